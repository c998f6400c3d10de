import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Database, Tx } from '../db/database.ts';
import type { LedgerAccount } from '../db/types.ts';

export interface Posting {
  account: LedgerAccount;
  userId: string | null;
  amount: number;
}

/**
 * Records one balanced movement: all postings in one statement, so the ledger's statement trigger
 * sees the whole set and refuses it unless it sums to zero. Zero postings are left out.
 * Returns the movement's transaction id.
 */
export async function recordMovement(
  trx: Tx,
  movement: { currency: string; purchaseId: string | null; postings: Posting[] },
): Promise<string> {
  const transactionId = randomUUID();
  const rows = movement.postings
    .filter((p) => p.amount !== 0)
    .map((p) => ({
      transaction_id: transactionId,
      account: p.account,
      user_id: p.userId,
      amount: p.amount,
      currency: movement.currency,
      purchase_id: movement.purchaseId,
    }));
  if (rows.length > 0) await trx.insertInto('ledger_entries').values(rows).execute();
  return transactionId;
}

/** Sum of every ledger entry per currency: all zero in a healthy ledger. */
export async function ledgerTotals(db: Database): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom('ledger_entries')
    .select(['currency', sql<number>`coalesce(sum(amount), 0)`.as('total')])
    .groupBy('currency')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.currency, Number(r.total)]));
}

export async function referralEarnings(db: Database, userId: string): Promise<number> {
  const row = await db
    .selectFrom('ledger_entries')
    .select(sql<number>`coalesce(sum(amount), 0)`.as('total'))
    .where('account', '=', 'referral_earnings')
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow();
  return Number(row.total);
}
