import { sql } from 'kysely';
import type { Database } from '../db/database.ts';
import type { Actor, PayoutLevel, ReferralPayoutStatus } from '../db/types.ts';
import type { ActedBy, PayoutContext } from './payout-context.ts';
import { errorMessage, isSettled, type PayoutResult, resultOf } from './payout-result.ts';
import { lockPurchase, transition } from './payout-store.ts';

export interface AttemptOptions extends ActedBy {
  /** The last attempt the caller will make: a failure leaves the purchase `failed`, not `queued`. */
  finalAttempt?: boolean;
}

/**
 * Records a failed attempt in its own transaction: attempts + 1 and the last error; on the final
 * attempt the purchase becomes `failed`. A purchase settled meanwhile is left alone, and so is one
 * whose lease another processor holds now (`leaseOwner` is ours; our lease expired): its result
 * stands, not ours.
 */
export async function recordFailure(
  ctx: PayoutContext,
  purchaseId: string,
  options: AttemptOptions,
  failedLevels: PayoutLevel[],
  cause: unknown,
  leaseOwner?: string,
): Promise<PayoutResult> {
  const message = errorMessage(cause);
  const { row, recorded } = await ctx.db.transaction().execute(async (trx) => {
    const purchase = await lockPurchase(trx, purchaseId);
    if (isSettled(purchase.referral_payout_status)) return { row: purchase, recorded: false };
    const owner = purchase.referral_payout_lease_owner;
    if (leaseOwner !== undefined && owner !== null && owner !== leaseOwner) return { row: purchase, recorded: false };
    const status: ReferralPayoutStatus = options.finalAttempt ? 'failed' : purchase.referral_payout_status!;
    const changed = await transition(
      trx,
      purchase,
      options.actor,
      purchase.referral_payout_attempts + 1,
      {
        referral_payout_status: status,
        referral_payout_last_error: message,
        referral_payout_failed_at: status === 'failed' ? sql`now()` : purchase.referral_payout_failed_at,
      },
      message,
      { operator: options.operator },
    );
    return { row: changed, recorded: true };
  });
  ctx.logger.warn(
    {
      purchaseId,
      actor: options.actor,
      operator: options.operator ?? undefined,
      attempts: row.referral_payout_attempts,
      status: row.referral_payout_status,
      err: cause,
    },
    'referral payout attempt failed',
  );
  return resultOf(row, recorded, [], { message, levels: failedLevels, cause });
}

/**
 * Marks a queued purchase `failed` after its retries are spent elsewhere (the queue's dead letter),
 * keeping its last error. Any other purchase is left alone: `changed` is false and `status` says
 * where it stands.
 */
export async function markReferralPayoutFailed(
  db: Database,
  purchaseId: string,
  actor: Actor,
  error: string,
): Promise<{ status: ReferralPayoutStatus; changed: boolean; lastError: string | null }> {
  return db.transaction().execute(async (trx) => {
    const purchase = await lockPurchase(trx, purchaseId);
    if (purchase.referral_payout_status !== 'queued') {
      return {
        status: purchase.referral_payout_status!,
        changed: false,
        lastError: purchase.referral_payout_last_error,
      };
    }
    const lastError = purchase.referral_payout_last_error ?? error;
    await transition(
      trx,
      purchase,
      actor,
      purchase.referral_payout_attempts,
      {
        referral_payout_status: 'failed',
        referral_payout_last_error: lastError,
        referral_payout_failed_at: sql`now()`,
      },
      lastError,
    );
    return { status: 'failed', changed: true, lastError };
  });
}
