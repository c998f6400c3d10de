import { sql } from 'kysely';
import type { Database } from '../db/database.ts';
import { DomainError, notFound } from '../errors.ts';
import { recordMovement } from '../ledger/ledger.ts';
import { treasuryDistribution } from '../money.ts';
import { enqueueOutbox, notifyOutbox } from '../outbox/outbox.ts';
import { type Purchase, toPurchase } from './purchase.ts';

export const REFERRAL_PAYOUT_TOPIC = 'referral_payout.requested';

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
 * Confirms a paid purchase. One transaction marks it confirmed, records the treasury distribution
 * and decides the referral payout: `not_applicable` (free content, buyer without a referrer) or
 * `queued` with an outbox row the worker turns into payouts. Nothing on this path waits for a
 * payout. Confirming again with the same payment reference returns the stored result.
 */
export async function confirmPurchase(
  db: Database,
  input: ConfirmPurchaseInput,
  options: { platformFeeBps: number },
): Promise<ConfirmPurchaseResult> {
  const result = await db.transaction().execute(async (trx) => {
    const current = await trx
      .selectFrom('purchases as p')
      .innerJoin('content as c', 'c.id', 'p.content_id')
      .leftJoin('user_referrals as r', 'r.user_id', 'p.buyer_id')
      .select(['p.status', 'p.price', 'p.currency', 'p.payment_reference', 'c.creator_id', 'r.direct_referrer_id'])
      .where('p.id', '=', input.purchaseId)
      .forUpdate('p')
      .executeTakeFirst();
    if (!current) throw notFound('purchase', input.purchaseId);

    if (current.status === 'confirmed') {
      if (current.payment_reference !== input.paymentReference) {
        throw new DomainError(
          'conflict',
          `purchase ${input.purchaseId} is already confirmed with another payment reference`,
        );
      }
      const row = await trx.selectFrom('purchases').selectAll().where('id', '=', input.purchaseId).executeTakeFirstOrThrow();
      return { row, replayed: true };
    }

    const { platformFee, creatorShare } = treasuryDistribution(current.price, options.platformFeeBps);
    const reason = current.price === 0 ? 'free_content' : current.direct_referrer_id === null ? 'no_referrer' : null;
    const payoutStatus = reason === null ? 'queued' : 'not_applicable';

    const row = await trx
      .updateTable('purchases')
      .set({
        status: 'confirmed',
        payment_reference: input.paymentReference,
        confirmed_at: sql`now()`,
        platform_fee: platformFee,
        referral_payout_status: payoutStatus,
        referral_payout_reason: reason,
        referral_payout_queued_at: reason === null ? sql`now()` : null,
        referral_payout_completed_at: reason === null ? null : sql`now()`,
      })
      .where('id', '=', input.purchaseId)
      .returningAll()
      .executeTakeFirstOrThrow();

    await recordMovement(trx, {
      currency: current.currency,
      purchaseId: input.purchaseId,
      postings: [
        { account: 'buyer_payment_clearing', userId: null, amount: -current.price },
        { account: 'creator_earnings', userId: current.creator_id, amount: creatorShare },
        { account: 'platform_treasury', userId: null, amount: platformFee },
      ],
    });

    if (payoutStatus === 'queued') {
      await enqueueOutbox(trx, REFERRAL_PAYOUT_TOPIC, input.purchaseId, { purchaseId: input.purchaseId });
    }
    await trx
      .insertInto('referral_payout_events')
      .values({ purchase_id: input.purchaseId, from_status: null, to_status: payoutStatus, actor: 'api', attempt: 0, error: null })
      .execute();
    return { row, replayed: false };
  });

  if (!result.replayed && result.row.referral_payout_status === 'queued') {
    // The purchase is committed: a failed wake-up must not turn its answer into an error. The relay's
    // poll picks the row up within OUTBOX_POLL_INTERVAL_MS.
    await notifyOutbox(db).catch(() => undefined);
  }
  return { purchase: toPurchase(result.row), replayed: result.replayed };
}
