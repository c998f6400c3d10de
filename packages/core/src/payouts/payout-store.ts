import { sql, type UpdateObject } from 'kysely';
import type { Database, Tx } from '../db/database.ts';
import type { Actor, DB, PurchaseRow, ReferralPayoutStatus } from '../db/types.ts';
import { notFound } from '../errors.ts';
import type { ActedBy } from './payout-context.ts';
import { paidLevelsCtes } from './level-store.ts';
import { type Chain, isConfirmed, type LevelToPay, notConfirmed } from './plan-levels.ts';

/**
 * The payout module's SQL on purchases: locking, leases, completion and status changes with their
 * events (the levels' SQL is in level-store.ts). Functions that rely on a row lock take a `Tx`.
 */

export interface LockedPurchase {
  purchase: PurchaseRow;
  chain: Chain;
  /** Another processor's lease is still running, by the database clock. */
  leaseActive: boolean;
}

/**
 * Locks the purchases (in id order, so two batches never deadlock) and reads, in the same round
 * trip, each buyer's chain and code and whether a lease is running. What was already recorded in
 * `referral_payouts` is NOT read here: a statement that waited for the lock still sees other tables
 * as of its start, so a level recorded by the processor it waited for would be missed. Read it with
 * `recordedLevels` after this returns.
 */
export async function lockForPayout(trx: Tx, purchaseIds: string[]): Promise<LockedPurchase[]> {
  const rows = await trx
    .selectFrom('purchases as p')
    .leftJoin('user_referrals as r', 'r.user_id', 'p.buyer_id')
    .leftJoin('referral_codes as c', 'c.code', 'r.code')
    .selectAll('p')
    .select([
      'r.direct_referrer_id',
      'r.grand_referrer_id',
      'c.active',
      'c.direct_rate_bps',
      'c.grand_rate_bps',
      sql<boolean>`coalesce(p.referral_payout_lease_until > now(), false)`.as('lease_active'),
    ])
    .where('p.id', 'in', purchaseIds)
    .orderBy('p.id')
    .forUpdate('p')
    .execute();
  return rows.map(
    ({
      direct_referrer_id,
      grand_referrer_id,
      active,
      direct_rate_bps,
      grand_rate_bps,
      lease_active,
      ...purchase
    }) => ({
      purchase,
      chain: { direct_referrer_id, grand_referrer_id, active, direct_rate_bps, grand_rate_bps },
      leaseActive: lease_active,
    }),
  );
}

/** Locks one confirmed purchase; not found and not confirmed are DomainErrors. */
export async function lockPurchase(trx: Tx, purchaseId: string): Promise<PurchaseRow> {
  const purchase = await trx
    .selectFrom('purchases')
    .selectAll()
    .where('id', '=', purchaseId)
    .forUpdate()
    .executeTakeFirst();
  if (!purchase) throw notFound('purchase', purchaseId);
  if (!isConfirmed(purchase)) throw notConfirmed(purchaseId);
  return purchase;
}

/** Lets `owner` alone transfer for the purchase until the lease runs out (by the database clock). */
export async function takeLease(trx: Tx, purchaseId: string, owner: string, leaseMs: number): Promise<void> {
  await trx
    .updateTable('purchases')
    .set({
      referral_payout_lease_owner: owner,
      referral_payout_lease_until: sql`now() + ${`${leaseMs} milliseconds`}::interval`,
    })
    .where('id', '=', purchaseId)
    .execute();
}

/** Gives the purchase back before the lease runs out, when this processor will not transfer after all. */
export async function releaseLease(db: Database, purchaseId: string, owner: string): Promise<void> {
  await db
    .updateTable('purchases')
    .set({ referral_payout_lease_owner: null, referral_payout_lease_until: null })
    .where('id', '=', purchaseId)
    .where('referral_payout_lease_owner', '=', owner)
    .execute();
}

/**
 * Completes many locked purchases in one statement: each becomes `completed` with its attempt
 * counted, its lease cleared and its event appended (naming the operator, for a run one asked for).
 */
export async function completeAll(trx: Tx, purchases: PurchaseRow[], by: ActedBy): Promise<Map<string, PurchaseRow>> {
  if (purchases.length === 0) return new Map();
  const ids = purchases.map((p) => p.id);
  const from = purchases.map((p) => p.referral_payout_status);
  const { rows } = await sql<PurchaseRow>`
    with changed as (
      update purchases set
        referral_payout_status = 'completed',
        referral_payout_reason = null,
        referral_payout_completed_at = now(),
        referral_payout_attempts = referral_payout_attempts + 1,
        referral_payout_lease_owner = null,
        referral_payout_lease_until = null
      where id = any(${ids}::uuid[])
      returning *
    ),
    event as (
      insert into referral_payout_events (purchase_id, from_status, to_status, actor, operator, attempt)
      select c.id, prior.from_status, 'completed', ${by.actor}, ${by.operator ?? null}, c.referral_payout_attempts
        from changed c join unnest(${ids}::uuid[], ${from}::text[]) as prior(id, from_status) on prior.id = c.id
    )
    select * from changed`.execute(trx);
  return new Map(rows.map((row) => [row.id, row]));
}

/**
 * The end of an http payout whose transfers all succeeded, in one statement (so one round trip and
 * one commit): locks the purchase, marks the answered levels paid and credits each once
 * (`paidLevelsCtes`), and completes the purchase with its event unless it is settled already or a
 * level is still unpaid. Answers the completed row, or the purchase as it is when nothing was
 * completed.
 */
export async function completeWithPaidLevels(
  db: Database,
  purchaseId: string,
  paid: { level: LevelToPay; reference: string }[],
  by: ActedBy,
): Promise<{ completed: true; purchase: PurchaseRow } | { completed: false; purchase: PurchaseRow | undefined }> {
  const levels =
    paid.length > 0
      ? sql`, ${paidLevelsCtes(paid, { afterLock: true })}`
      : sql`, changed as (select null::uuid as purchase_id, null::text as level where false)`;
  const { rows } = await sql<PurchaseRow>`
    with locked as (
      select id, referral_payout_status from purchases where id = ${purchaseId} for update
    )${levels},
    completed as (
      update purchases p set
        referral_payout_status = 'completed',
        referral_payout_reason = null,
        referral_payout_completed_at = now(),
        referral_payout_attempts = p.referral_payout_attempts + 1,
        referral_payout_lease_owner = null,
        referral_payout_lease_until = null
        from locked l
       where p.id = l.id
         and l.referral_payout_status not in ('completed', 'not_applicable')
         and not exists (
           select 1 from referral_payouts r
            where r.purchase_id = p.id and r.status <> 'paid'
              and not exists (select 1 from changed c where c.purchase_id = r.purchase_id and c.level = r.level)
         )
      returning p.*
    ),
    event as (
      insert into referral_payout_events (purchase_id, from_status, to_status, actor, operator, attempt)
      select c.id, l.referral_payout_status, 'completed', ${by.actor}, ${by.operator ?? null}, c.referral_payout_attempts
        from completed c join locked l on l.id = c.id
    )
    select * from completed`.execute(db);
  if (rows[0]) return { completed: true, purchase: rows[0] };
  const purchase = await db.selectFrom('purchases').selectAll().where('id', '=', purchaseId).executeTakeFirst();
  return { completed: false, purchase };
}

/** Nothing to pay: the locked purchase is settled as `not_applicable` with the plan's reason. */
export function settleNotApplicable(trx: Tx, purchase: PurchaseRow, by: ActedBy, reason: string): Promise<PurchaseRow> {
  return transition(
    trx,
    purchase,
    by.actor,
    purchase.referral_payout_attempts + 1,
    {
      referral_payout_status: 'not_applicable',
      referral_payout_reason: reason,
      referral_payout_completed_at: sql`now()`,
    },
    null,
    { operator: by.operator },
  );
}

/** Applies a status change to a locked purchase, clears its lease and appends the event: one statement. */
export async function transition(
  trx: Tx,
  purchase: PurchaseRow,
  actor: Actor,
  attempt: number,
  change: UpdateObject<DB, 'purchases'> & { referral_payout_status: ReferralPayoutStatus },
  error: string | null = null,
  /** Who asked (a named operator) and what was done, for changes an operator made. */
  by: { operator?: string | null; note?: string | null } = {},
): Promise<PurchaseRow> {
  return trx
    .with('changed', (db) =>
      db
        .updateTable('purchases')
        .set({
          ...change,
          referral_payout_attempts: attempt,
          referral_payout_lease_owner: null,
          referral_payout_lease_until: null,
        })
        .where('id', '=', purchase.id)
        .returningAll(),
    )
    .with('event', (db) =>
      db.insertInto('referral_payout_events').values({
        purchase_id: purchase.id,
        from_status: purchase.referral_payout_status,
        to_status: change.referral_payout_status,
        actor,
        attempt,
        error,
        operator: by.operator ?? null,
        note: by.note ?? null,
      }),
    )
    .selectFrom('changed')
    .selectAll()
    .executeTakeFirstOrThrow();
}
