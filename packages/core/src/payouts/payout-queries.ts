import { sql } from 'kysely';
import { DEFAULT_STUCK_QUEUED_AFTER_SECONDS } from '../config.ts';
import type { Database } from '../db/database.ts';
import type { Actor, LevelPayoutStatus, PayoutLevel, ReferralPayoutStatus } from '../db/types.ts';
import { notFound } from '../errors.ts';
import { decodeKeysetCursor, type KeysetOrder, keysetPage, keysetTimestamp, pastKeyset } from '../keyset-cursor.ts';
import { type OutboxBacklog, outboxBacklog } from '../outbox/outbox.ts';
import { countStuckQueued } from './stuck-queued.ts';
import { type TreasurySummary, treasurySummary } from '../treasury/gate-record.ts';

export interface ReferralPayoutStatusView {
  purchaseId: string;
  status: ReferralPayoutStatus | null;
  reason: string | null;
  attempts: number;
  lastError: string | null;
  queuedAt: string | null;
  completedAt: string | null;
  payouts: {
    level: PayoutLevel;
    beneficiaryId: string;
    rateBps: number;
    amount: number;
    currency: string;
    status: LevelPayoutStatus;
    reference: string | null;
    paidAt: string | null;
    error: string | null;
  }[];
  events: {
    from: ReferralPayoutStatus | null;
    to: ReferralPayoutStatus;
    actor: Actor;
    /** Who acted, when known (a named admin token, the CLI's OS user). */
    operator: string | null;
    attempt: number;
    error: string | null;
    /** The operator's words, e.g. why a purchase was written off. */
    note: string | null;
    at: string;
  }[];
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

export async function getReferralPayoutStatus(db: Database, purchaseId: string): Promise<ReferralPayoutStatusView> {
  // One snapshot for the three reads: read apart, a payout committing between them showed a
  // purchase `completed` with its levels still unpaid (or none yet).
  const { purchase, payouts, events } = await db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => ({
      purchase: await trx.selectFrom('purchases').selectAll().where('id', '=', purchaseId).executeTakeFirst(),
      payouts: await trx
        .selectFrom('referral_payouts')
        .selectAll()
        .where('purchase_id', '=', purchaseId)
        .orderBy('level')
        .execute(),
      events: await trx
        .selectFrom('referral_payout_events')
        .selectAll()
        .where('purchase_id', '=', purchaseId)
        .orderBy('id')
        .execute(),
    }));
  if (!purchase) throw notFound('purchase', purchaseId);
  return {
    purchaseId,
    status: purchase.referral_payout_status,
    reason: purchase.referral_payout_reason,
    attempts: purchase.referral_payout_attempts,
    lastError: purchase.referral_payout_last_error,
    queuedAt: iso(purchase.referral_payout_queued_at),
    completedAt: iso(purchase.referral_payout_completed_at),
    payouts: payouts.map((p) => ({
      level: p.level,
      beneficiaryId: p.beneficiary_id,
      rateBps: p.rate_bps,
      amount: p.amount,
      currency: p.currency,
      status: p.status,
      reference: p.reference,
      paidAt: iso(p.paid_at),
      error: p.error,
    })),
    events: events.map((e) => ({
      from: e.from_status,
      to: e.to_status,
      actor: e.actor,
      operator: e.operator,
      attempt: e.attempt,
      error: e.error,
      note: e.note,
      at: e.at.toISOString(),
    })),
  };
}

export interface FailedPayoutItem {
  purchaseId: string;
  buyerId: string;
  contentId: string;
  price: number;
  currency: string;
  attempts: number;
  lastError: string | null;
  failedAt: string;
}

export interface FailedPayoutPage {
  items: FailedPayoutItem[];
  nextCursor: string | null;
  total: number;
}

export const MAX_FAILED_PAGE = 500;

/**
 * Failed purchases, newest failure first. Keyset pagination on (failed_at, id) stays correct while
 * new failures arrive: they sort before the cursor and never shift later pages.
 */
export async function listFailedPayouts(
  db: Database,
  options: { limit: number; cursor?: string | undefined; order?: KeysetOrder },
): Promise<FailedPayoutPage> {
  const limit = Math.min(Math.max(1, options.limit), MAX_FAILED_PAGE);
  const after = options.cursor === undefined ? undefined : decodeKeysetCursor(options.cursor);
  const order = options.order ?? 'newest';
  const direction = order === 'newest' ? 'desc' : 'asc';

  let query = db
    .selectFrom('purchases')
    .select([
      'id',
      'buyer_id',
      'content_id',
      'price',
      'currency',
      'referral_payout_attempts',
      'referral_payout_last_error',
      'referral_payout_failed_at',
      keysetTimestamp('referral_payout_failed_at').as('cursor_at'),
    ])
    .where('referral_payout_status', '=', 'failed')
    .orderBy('referral_payout_failed_at', direction)
    .orderBy('id', direction)
    .limit(limit + 1);
  if (after) query = query.where(pastKeyset({ at: 'referral_payout_failed_at', id: 'id' }, after, order));
  const [rows, count] = await Promise.all([
    query.execute(),
    db
      .selectFrom('purchases')
      .select(sql<number>`count(*)`.as('total'))
      .where('referral_payout_status', '=', 'failed')
      .executeTakeFirstOrThrow(),
  ]);
  const { page, nextCursor } = keysetPage(rows, limit);
  return {
    items: page.map((r) => ({
      purchaseId: r.id,
      buyerId: r.buyer_id,
      contentId: r.content_id,
      price: r.price,
      currency: r.currency,
      attempts: r.referral_payout_attempts,
      lastError: r.referral_payout_last_error,
      failedAt: r.referral_payout_failed_at!.toISOString(),
    })),
    nextCursor,
    total: Number(count.total),
  };
}

export interface PayoutSummary {
  counts: Record<ReferralPayoutStatus, number>;
  oldestQueuedAgeSeconds: number | null;
  outbox: OutboxBacklog;
  failuresLastHour: number;
  failuresLastDay: number;
  recentFailures: FailedPayoutItem[];
  treasury: TreasurySummary;
  /**
   * Queued purchases with no live payout job and no activity for longer than `afterSeconds`
   * (STUCK_QUEUED_AFTER_SECONDS); the worker's sweep re-enqueues them.
   */
  stuckQueued: { count: number; afterSeconds: number };
}

/** Confirmed purchases per referral payout status, every status present (0 when none). */
export async function countByPayoutStatus(db: Database): Promise<Record<ReferralPayoutStatus, number>> {
  const rows = await db
    .selectFrom('purchases')
    .select(['referral_payout_status as status', sql<number>`count(*)`.as('n')])
    .where('referral_payout_status', 'is not', null)
    .groupBy('referral_payout_status')
    .execute();
  const counts: Record<ReferralPayoutStatus, number> = { queued: 0, completed: 0, failed: 0, not_applicable: 0 };
  for (const row of rows) counts[row.status!] = Number(row.n);
  return counts;
}

export async function payoutSummary(
  db: Database,
  options: { stuckQueuedAfterSeconds?: number } = {},
): Promise<PayoutSummary> {
  const stuckAfter = options.stuckQueuedAfterSeconds ?? DEFAULT_STUCK_QUEUED_AFTER_SECONDS;
  const [counts, queued, outbox, failures, recent, treasury, stuck] = await Promise.all([
    countByPayoutStatus(db),
    db
      .selectFrom('purchases')
      .select(sql<number | null>`extract(epoch from now() - min(referral_payout_queued_at))::float8`.as('age'))
      .where('referral_payout_status', '=', 'queued')
      .executeTakeFirstOrThrow(),
    outboxBacklog(db),
    db
      .selectFrom('purchases')
      .select([
        sql<number>`count(*) filter (where referral_payout_failed_at > now() - interval '1 hour')`.as('hour'),
        sql<number>`count(*)`.as('day'),
      ])
      .where('referral_payout_status', '=', 'failed')
      .where('referral_payout_failed_at', '>', sql<Date>`now() - interval '1 day'`)
      .executeTakeFirstOrThrow(),
    listFailedPayouts(db, { limit: 5 }),
    treasurySummary(db),
    countStuckQueued(db, stuckAfter),
  ]);
  return {
    counts,
    oldestQueuedAgeSeconds: queued.age === null ? null : Number(queued.age),
    outbox,
    failuresLastHour: Number(failures.hour),
    failuresLastDay: Number(failures.day),
    recentFailures: recent.items,
    treasury,
    stuckQueued: { count: stuck, afterSeconds: stuckAfter },
  };
}
