import { sql } from 'kysely';
import type { Database } from '../db/database.ts';
import { DomainError, notFound } from '../errors.ts';
import type { PurchaseRow } from '../db/types.ts';
import { movementRows } from '../ledger/ledger.ts';
import { treasuryDistribution } from '../money.ts';
import { notifyOutbox, REFERRAL_PAYOUT_TOPIC } from '../outbox/outbox.ts';
import { type Purchase, toPurchase } from './purchase.ts';

export interface ConfirmPurchaseInput {
  purchaseId: string;
  paymentReference: string;
}

export interface ConfirmPurchaseResult {
  purchase: Purchase;
  /** True when the purchase was already confirmed with this payment reference. */
  replayed: boolean;
}

/**
 * Confirms a paid purchase. One statement — atomic on its own, so no transaction is held open
 * across round trips — marks it confirmed, records the treasury distribution and decides the
 * referral payout: `not_applicable` (free content, buyer without a referrer) or `queued` with an
 * outbox row the worker turns into payouts. Nothing on this path waits for a payout. Confirming
 * again with the same payment reference returns the stored result.
 */
export async function confirmPurchase(
  db: Database,
  input: ConfirmPurchaseInput,
  options: { platformFeeBps: number },
): Promise<ConfirmPurchaseResult> {
  // Price, creator and referral chain are fixed once the purchase exists, so reading them without a
  // lock is safe; the update below re-checks `pending`, and a concurrent confirm makes it a no-op.
  const current = await db
    .selectFrom('purchases as p')
    .innerJoin('content as c', 'c.id', 'p.content_id')
    .leftJoin('user_referrals as r', 'r.user_id', 'p.buyer_id')
    .select(['p.status', 'p.price', 'p.currency', 'c.creator_id', 'r.direct_referrer_id'])
    .where('p.id', '=', input.purchaseId)
    .executeTakeFirst();
  if (!current) throw notFound('purchase', input.purchaseId);

  if (current.status === 'pending') {
    const { platformFee, creatorShare } = treasuryDistribution(current.price, options.platformFeeBps);
    const reason = current.price === 0 ? 'free_content' : current.direct_referrer_id === null ? 'no_referrer' : null;
    const ledger = movementRows({
      currency: current.currency,
      purchaseId: input.purchaseId,
      postings: [
        { account: 'buyer_payment_clearing', userId: null, amount: -current.price },
        { account: 'creator_earnings', userId: current.creator_id, amount: creatorShare },
        { account: 'platform_treasury', userId: null, amount: platformFee },
      ],
    });
    const ledgerInsert = ledger.length
      ? sql`, ledger as (
          insert into ledger_entries (transaction_id, account, user_id, amount, currency, purchase_id)
          select * from (values ${sql.join(ledger.map((r) => sql`(${r.transaction_id}::uuid, ${r.account}, ${r.user_id}::uuid, ${r.amount}::bigint, ${r.currency}, ${r.purchase_id}::uuid)`))}) v
          where exists (select 1 from confirmed))`
      : sql``;
    const { rows } = await sql<PurchaseRow>`
      with confirmed as (
        update purchases set
          status = 'confirmed',
          payment_reference = ${input.paymentReference},
          confirmed_at = now(),
          platform_fee = ${platformFee},
          referral_payout_status = ${reason === null ? 'queued' : 'not_applicable'},
          referral_payout_reason = ${reason},
          referral_payout_queued_at = case when ${reason === null} then now() end,
          referral_payout_completed_at = case when ${reason === null} then null else now() end
        where id = ${input.purchaseId} and status = 'pending'
        returning *
      )${ledgerInsert},
      outbox_row as (
        insert into outbox (topic, aggregate_id, payload)
        select ${REFERRAL_PAYOUT_TOPIC}, id, jsonb_build_object('purchaseId', id)
          from confirmed where referral_payout_status = 'queued'
      ),
      event as (
        insert into referral_payout_events (purchase_id, from_status, to_status, actor, attempt)
        select id, null, referral_payout_status, 'api', 0 from confirmed
      )
      select * from confirmed`.execute(db);
    const row = rows[0];
    if (row) {
      if (row.referral_payout_status === 'queued') {
        // The purchase is committed: a failed wake-up must not turn its answer into an error. The
        // relay's poll picks the row up within OUTBOX_POLL_INTERVAL_MS.
        await notifyOutbox(db).catch(() => undefined);
      }
      return { purchase: toPurchase(row), replayed: false };
    }
    // A concurrent confirm got there first: answer as a replay of it, below.
  }

  const row = await db.selectFrom('purchases').selectAll().where('id', '=', input.purchaseId).executeTakeFirstOrThrow();
  if (row.payment_reference !== input.paymentReference) {
    throw new DomainError('conflict', `purchase ${input.purchaseId} is already confirmed with another payment reference`);
  }
  return { purchase: toPurchase(row), replayed: true };
}
