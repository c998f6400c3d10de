import { sql } from 'kysely';
import type { Database } from '@referrals/core';

export interface InvariantReport {
  /** Ledger total per currency; every value must be 0. */
  ledgerTotals: Record<string, number>;
  /** Ledger rows in all: totals of zero say little about an empty ledger. */
  ledgerEntries: number;
  /** Confirmed purchases with a price whose payment is not in the ledger (must be none). */
  confirmedWithoutLedger: number;
  /** Levels recorded paid without their one referral credit in the ledger (must be none). */
  paidWithoutCredit: number;
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
  const one = async (query: string) =>
    Number((await sql<{ n: number }>`${sql.raw(query)}`.execute(db)).rows[0]?.n ?? 0);
  return {
    ledgerTotals: Object.fromEntries(totals.map((t) => [t.currency, Number(t.total)])),
    ledgerEntries: await one(`select count(*) as n from ledger_entries`),
    confirmedWithoutLedger: await one(`select count(*) as n from purchases p where status = 'confirmed' and price > 0
      and not exists (select 1 from ledger_entries e
        where e.purchase_id = p.id and e.account = 'buyer_payment_clearing' and e.amount = -p.price)`),
    paidWithoutCredit: await one(`select count(*) as n from referral_payouts r where status = 'paid'
      and not exists (select 1 from ledger_entries e
        where e.purchase_id = r.purchase_id and e.account = 'referral_earnings' and e.user_id = r.beneficiary_id and e.amount = r.amount)`),
    confirmedWithoutStatus: await one(
      `select count(*) as n from purchases where status = 'confirmed' and referral_payout_status is null`,
    ),
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
  report.confirmedWithoutLedger === 0 &&
  report.paidWithoutCredit === 0 &&
  report.queuedWithoutOutbox === 0 &&
  report.payoutsOverFee === 0 &&
  report.doubleCredits === 0;
