import { randomUUID } from 'node:crypto';
import { type RawBuilder, sql } from 'kysely';
import type { PayoutGatewayKind } from '../config.ts';
import type { Database, Tx } from '../db/database.ts';
import type { LevelToPay, RecordedLevel } from './plan-levels.ts';

/**
 * The SQL of `referral_payouts`: a purchase's levels as planned, paid (with their ledger credit) or
 * failed. Functions that rely on the purchase's row lock take a `Tx`.
 */

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
  const { rows } = await sql<{ purchase_id: string; level: string }>`
    with ${paidLevelsCtes(paid)}
    select purchase_id, level from changed`.execute(trx);
  return rows;
}

/**
 * The common table expressions of `markLevelsPaid`, for a statement that does more with them:
 * `answered` (the treasury's references), `changed` (the levels this statement paid, each with the
 * id of its ledger movement) and `credit` (those movements). With `afterLock`, the levels are
 * touched only once the CTE named `locked` (the purchase rows, `for update`) has been read, so the
 * statement takes the purchase's lock before the levels', as every other path does.
 */
export function paidLevelsCtes(
  paid: { level: LevelToPay; reference: string }[],
  options: { afterLock?: boolean } = {},
): RawBuilder<unknown> {
  const values = paid.map(
    ({ level, reference }) =>
      sql`(${level.purchase_id}::uuid, ${level.level}::text, ${reference}::text, ${randomUUID()}::uuid)`,
  );
  const locked = options.afterLock ? sql`join locked l on l.id = a.purchase_id` : sql``;
  return sql`answered (purchase_id, level, reference, transaction_id) as (values ${sql.join(values)}),
    changed as (
      update referral_payouts r
         set status = 'paid', reference = a.reference, paid_at = now(), error = null, updated_at = now()
        from answered a ${locked}
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
    )`;
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

export async function unpaidLevelNames(db: Database | Tx, purchaseId: string): Promise<string[]> {
  const rows = await db
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
