import { sql } from 'kysely';
import type { Database } from '@referrals/core';

export interface InvariantReport {
  /** Ledger total per currency; every value must be 0. */
  ledgerTotals: Record<string, number>;
  /** Confirmed purchases without a referral status (must be none). */
  confirmedWithoutStatus: number;
  /** Queued purchases without an outbox row (must be none). */
  queuedWithoutOutbox: number;
  /** Purchases whose referral payouts exceed the fee taken at confirm (must be none). */
  payoutsOverFee: number;
  /** (purchase, level) pairs credited more than once in the ledger (must be none). */
  doubleCredits: number;
}

/** The invariants every test suite and benchmark checks, read straight from the database. */
export async function readInvariants(db: Database): Promise<InvariantReport> {
  const totals = await db
    .selectFrom('ledger_entries')
    .select(['currency', sql<number>`sum(amount)`.as('total')])
    .groupBy('currency')
    .execute();
  const one = async (query: string) => Number((await sql<{ n: number }>`${sql.raw(query)}`.execute(db)).rows[0]?.n ?? 0);
  return {
    ledgerTotals: Object.fromEntries(totals.map((t) => [t.currency, Number(t.total)])),
    confirmedWithoutStatus: await one(`select count(*) as n from purchases where status = 'confirmed' and referral_payout_status is null`),
    queuedWithoutOutbox: await one(`select count(*) as n from purchases p where referral_payout_status = 'queued'
      and not exists (select 1 from outbox o where o.aggregate_id = p.id)`),
    payoutsOverFee: await one(`select count(*) as n from purchases p
      join (select purchase_id, sum(amount) as paid from referral_payouts group by purchase_id) r on r.purchase_id = p.id
      where r.paid > p.platform_fee`),
    doubleCredits: await one(`select count(*) as n from (
      select purchase_id, user_id, count(*) from ledger_entries
      where account = 'referral_earnings' group by purchase_id, user_id having count(*) > 1) d`),
  };
}

export const HEALTHY = (report: InvariantReport) =>
  Object.values(report.ledgerTotals).every((t) => t === 0) &&
  report.confirmedWithoutStatus === 0 &&
  report.queuedWithoutOutbox === 0 &&
  report.payoutsOverFee === 0 &&
  report.doubleCredits === 0;
