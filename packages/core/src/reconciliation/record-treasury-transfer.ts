import { sql } from 'kysely';
import type { Database } from '../db/database.ts';
import type { Actor, PayoutLevel, ReferralPayoutStatus } from '../db/types.ts';
import { formatMoney } from '../money.ts';
import { markLevelPaid, unpaidLevelNames } from '../payouts/level-store.ts';
import { lockPurchase, transition } from '../payouts/payout-store.ts';
import type { TreasuryTransfer } from './treasury-books.ts';

/** The purchase reason, and the first word of the history note, of a repair by reconciliation. */
export const RECONCILED = 'reconciled';

export interface RecordedTransfer {
  purchaseId: string;
  level: PayoutLevel;
  reference: string;
  amount: number;
  currency: string;
  /** The purchase's referral payout status after the repair. */
  purchaseStatus: ReferralPayoutStatus;
}

/**
 * Records a transfer the treasury made as the payment of the level we planned for it; it never sends
 * one. Under the purchase's row lock the level is read again and must still be unpaid and still match
 * the transfer's amount, currency and beneficiary, and no processor may hold the purchase's lease (its
 * own answer is about to be recorded). Then the level is paid with the treasury's reference, its ledger
 * movement written, and the purchase completes (reason `reconciled`) when no level is left to pay; one
 * event says what was recorded. Null when a check fails: the drift then stays in the report.
 */
export async function recordTreasuryTransfer(
  db: Database,
  target: { purchaseId: string; level: PayoutLevel },
  transfer: Pick<TreasuryTransfer, 'reference' | 'beneficiaryId' | 'amount' | 'currency'>,
  by: { actor: Actor; operator?: string | null },
): Promise<RecordedTransfer | null> {
  return db.transaction().execute(async (trx) => {
    const purchase = await lockPurchase(trx, target.purchaseId);
    const level = await trx
      .selectFrom('referral_payouts as l')
      .innerJoin('purchases as p', 'p.id', 'l.purchase_id')
      .select(['l.purchase_id', 'l.level', 'l.beneficiary_id', 'l.rate_bps', 'l.amount', 'l.currency', 'l.status'])
      .select(sql<boolean>`coalesce(p.referral_payout_lease_until > now(), false)`.as('leased'))
      .where('l.purchase_id', '=', target.purchaseId)
      .where('l.level', '=', target.level)
      .executeTakeFirst();
    if (!level || level.leased || level.status === 'paid') return null;
    if (
      level.amount !== transfer.amount ||
      level.currency !== transfer.currency ||
      level.beneficiary_id !== transfer.beneficiaryId
    )
      return null;
    if (!(await markLevelPaid(trx, level, transfer.reference))) return null;

    const note = `${RECONCILED}: the treasury's transfer ${transfer.reference} of ${formatMoney(transfer.amount, transfer.currency)} recorded as the ${target.level} level's payment`;
    const settled = (await unpaidLevelNames(trx, purchase.id)).length === 0;
    const change = settled
      ? {
          referral_payout_status: 'completed' as const,
          referral_payout_reason: RECONCILED,
          referral_payout_completed_at: sql<Date>`now()`,
        }
      : { referral_payout_status: purchase.referral_payout_status! };
    const row = await transition(trx, purchase, by.actor, purchase.referral_payout_attempts, change, null, {
      operator: by.operator,
      note,
    });
    return {
      ...target,
      reference: transfer.reference,
      amount: transfer.amount,
      currency: transfer.currency,
      purchaseStatus: row.referral_payout_status!,
    };
  });
}
