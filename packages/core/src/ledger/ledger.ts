import { randomUUID } from 'node:crypto';
import { type Insertable, sql } from 'kysely';
import type { Database, Tx } from '../db/database.ts';
import type { LedgerAccount, LedgerEntriesTable } from '../db/types.ts';

export interface Posting {
  account: LedgerAccount;
  userId: string | null;
  amount: number;
}

export interface Movement {
  currency: string;
  purchaseId: string | null;
  postings: Posting[];
}

/** The ledger rows of one movement under a new transaction id; zero postings are left out. */
export function movementRows(movement: Movement): Insertable<LedgerEntriesTable>[] {
  const transactionId = randomUUID();
  return movement.postings
    .filter((p) => p.amount !== 0)
    .map((p) => ({
      transaction_id: transactionId,
      account: p.account,
      user_id: p.userId,
      amount: p.amount,
      currency: movement.currency,
      purchase_id: movement.purchaseId,
    }));
}

/**
 * Records one balanced movement: all postings in one statement, so the ledger's statement trigger
 * sees the whole set and refuses it unless it sums to zero.
 */
export async function recordMovement(trx: Tx, movement: Movement): Promise<void> {
  const rows = movementRows(movement);
  if (rows.length > 0) await trx.insertInto('ledger_entries').values(rows).execute();
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
