import { randomUUID } from 'node:crypto';
import { sql, type UpdateObject } from 'kysely';
import type { Database, Tx } from '../db/database.ts';
import type { Actor, DB, PurchaseRow, ReferralPayoutStatus } from '../db/types.ts';
import { notFound } from '../errors.ts';
import type { ActedBy } from './payout-context.ts';
import type { PayoutGatewayKind } from '../config.ts';
import { type Chain, isConfirmed, type LevelToPay, notConfirmed, type RecordedLevel } from './plan-levels.ts';

/** The payout module's SQL. Functions that rely on a purchase's row lock take a `Tx`. */

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

/** The levels earlier attempts recorded, per purchase. Call it under the purchases' row lock. */
export async function recordedLevels(trx: Tx, purchaseIds: string[]): Promise<Map<string, RecordedLevel[]>> {
  const byPurchase = new Map<string, RecordedLevel[]>();
  if (purchaseIds.length === 0) return byPurchase;
  const rows = await trx
    .selectFrom('referral_payouts')
    .select(['purchase_id', 'level', 'beneficiary_id', 'rate_bps', 'amount', 'currency', 'status', 'gateway'])
    .where('purchase_id', 'in', purchaseIds)
    .orderBy('level')
    .execute();
  for (const row of rows) byPurchase.set(row.purchase_id, [...(byPurchase.get(row.purchase_id) ?? []), row]);
  return byPurchase;
}

/**
 * Under the purchase's row lock, in one statement: records the planned levels `pending` through
 * `gateway` unless an earlier attempt recorded the purchase's levels (those stand, as planned then),
 * takes the lease for `owner`, and answers the levels as recorded now. The earlier levels are read
 * by this statement, which starts after the lock was granted, so it sees what the processor it may
 * have waited for committed.
 */
export async function recordPlanAndLease(
  trx: Tx,
  purchaseId: string,
  planned: LevelToPay[],
  gateway: PayoutGatewayKind,
  lease: { owner: string; ms: number },
): Promise<RecordedLevel[]> {
  const values = planned.map(
    (l) =>
      sql`(${l.purchase_id}::uuid, ${l.level}::text, ${l.beneficiary_id}::uuid, ${l.rate_bps}::int, ${l.amount}::bigint, ${l.currency}::text)`,
  );
  const { rows } = await sql<RecordedLevel>`
    with earlier as (
      select purchase_id, level, beneficiary_id, rate_bps, amount, currency, status, gateway
        from referral_payouts where purchase_id = ${purchaseId}
    ),
    planned (purchase_id, level, beneficiary_id, rate_bps, amount, currency) as (values ${sql.join(values)}),
    recorded as (
      insert into referral_payouts (purchase_id, level, beneficiary_id, rate_bps, amount, currency, gateway)
      select p.*, ${gateway} from planned p where not exists (select 1 from earlier)
      returning purchase_id, level, beneficiary_id, rate_bps, amount, currency, status, gateway
    ),
    leased as (
      update purchases
         set referral_payout_lease_owner = ${lease.owner},
             referral_payout_lease_until = now() + ${`${lease.ms} milliseconds`}::interval
       where id = ${purchaseId}
    )
    select * from earlier union all select * from recorded
    order by level`.execute(trx);
  return rows.map((r) => ({ ...r, amount: Number(r.amount) }));
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
 * Marks a level paid and credits its beneficiary in the ledger, in the caller's transaction; false
 * (and no credit) when it already was paid. The `status <> 'paid'` guard is what keeps a processor
 * whose lease ran out, and whose transfer the treasury deduplicated, from crediting a second time.
 */
export async function markLevelPaid(trx: Tx, level: LevelToPay, reference: string): Promise<boolean> {
  return (await markLevelsPaid(trx, [{ level, reference }])).length === 1;
}

/**
 * `markLevelPaid` for several levels in one statement: each level not paid yet becomes paid with
 * its reference and is credited to its beneficiary from the platform treasury (one balanced
 * movement per level, amounts as recorded). Returns the levels this call paid.
 */
export async function markLevelsPaid(
  trx: Tx,
  paid: { level: LevelToPay; reference: string }[],
): Promise<{ purchase_id: string; level: string }[]> {
  if (paid.length === 0) return [];
  const values = paid.map(
    ({ level, reference }) =>
      sql`(${level.purchase_id}::uuid, ${level.level}::text, ${reference}::text, ${randomUUID()}::uuid)`,
  );
  const { rows } = await sql<{ purchase_id: string; level: string }>`
    with answered (purchase_id, level, reference, transaction_id) as (values ${sql.join(values)}),
    changed as (
      update referral_payouts r
         set status = 'paid', reference = a.reference, paid_at = now(), error = null, updated_at = now()
        from answered a
       where r.purchase_id = a.purchase_id and r.level = a.level and r.status <> 'paid'
      returning r.purchase_id, r.level, r.beneficiary_id, r.amount, r.currency, a.transaction_id
    ),
    credit as (
      insert into ledger_entries (transaction_id, account, user_id, amount, currency, purchase_id)
      select c.transaction_id, v.account, v.user_id, v.amount, c.currency, c.purchase_id
        from changed c
        cross join lateral (values
          ('platform_treasury', null::uuid, -c.amount),
          ('referral_earnings', c.beneficiary_id, c.amount)
        ) v (account, user_id, amount)
       where v.amount <> 0
    )
    select purchase_id, level from changed`.execute(trx);
  return rows;
}

/** Records a level's failed transfer; a level paid meanwhile stays paid. */
export async function markLevelFailed(db: Database, level: LevelToPay, error: string): Promise<void> {
  await db
    .updateTable('referral_payouts')
    .set({ status: 'failed', error, updated_at: sql`now()` })
    .where('purchase_id', '=', level.purchase_id)
    .where('level', '=', level.level)
    .where('status', '<>', 'paid')
    .execute();
}

export async function unpaidLevelNames(trx: Tx, purchaseId: string): Promise<string[]> {
  const rows = await trx
    .selectFrom('referral_payouts')
    .select('level')
    .where('purchase_id', '=', purchaseId)
    .where('status', '<>', 'paid')
    .execute();
  return rows.map((r) => r.level);
}

/**
 * Records levels paid through `gateway` in one statement, whether or not an earlier attempt
 * recorded them pending (through the same gateway: the caller checked).
 */
export async function recordLevelsPaid(
  trx: Tx,
  levels: (LevelToPay & { reference: string })[],
  gateway: PayoutGatewayKind,
): Promise<void> {
  if (levels.length === 0) return;
  await trx
    .insertInto('referral_payouts')
    .values(
      levels.map(({ status: _status, reference, ...level }) => ({
        ...level,
        gateway,
        status: 'paid' as const,
        reference,
        paid_at: sql`now()`,
      })),
    )
    .onConflict((oc) =>
      oc.columns(['purchase_id', 'level']).doUpdateSet((eb) => ({
        status: 'paid',
        reference: eb.ref('excluded.reference'),
        paid_at: sql`now()`,
        error: null,
        updated_at: sql`now()`,
      })),
    )
    .execute();
}

/**
 * Completes many locked purchases in one statement: each becomes `completed` with its attempt
 * counted, its lease cleared and its event appended (naming the operator, for a run one asked for).
 */
export async function completeAll(
  trx: Tx,
  purchases: PurchaseRow[],
  by: ActedBy,
  /** Leave out (and so do not complete) a purchase that still has a level not paid. */
  options: { onlyIfAllPaid?: boolean } = {},
): Promise<Map<string, PurchaseRow>> {
  if (purchases.length === 0) return new Map();
  const allPaid = options.onlyIfAllPaid
    ? sql`and not exists (select 1 from referral_payouts r where r.purchase_id = purchases.id and r.status <> 'paid')`
    : sql``;
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
      where id = any(${ids}::uuid[]) ${allPaid}
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
