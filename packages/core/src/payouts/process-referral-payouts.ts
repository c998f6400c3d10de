import type { Logger } from 'pino';
import type { ActedBy, PayoutContext, PayoutRequest } from './payout-context.ts';
import { isSettled, type PayoutRejection, type PayoutResult, rejected } from './payout-result.ts';
import type { AttemptOptions } from './record-failure.ts';
import { TreasuryGateShut } from '../treasury/treasury-gate.ts';
import { settleBatchInDatabase, settleOneInDatabase } from './settle-in-database.ts';
import { settleExternally } from './settle-external.ts';

export interface ProcessOptions extends AttemptOptions {
  /** Logger for this purchase's lines (e.g. carrying the request id); defaults to the context's. */
  logger?: Logger;
}

/**
 * The one function that pays a purchase's referral commissions; the worker, the admin endpoint and
 * the CLI all call it, and calling it again is always safe. A payout that fails is an answer, not
 * an exception: the result says whether the purchase is settled, will be retried or has failed, and
 * carries the recorded error. It throws a DomainError for a purchase that does not exist or is not
 * confirmed, and whatever else is no payout failure (the database is unreachable, a bug).
 */
export async function processReferralPayouts(
  ctx: PayoutContext,
  purchaseId: string,
  options: ProcessOptions,
): Promise<PayoutResult> {
  const [result] = await processReferralPayoutsBatch(
    ctx,
    [{ purchaseId, finalAttempt: options.finalAttempt, logger: options.logger }],
    { actor: options.actor, operator: options.operator },
  );
  if (result!.status === 'rejected') throw result!.error;
  return result!;
}

/**
 * Several purchases at once, with the same guarantees as one by one, answering for each: a purchase
 * that cannot be processed (see processReferralPayouts) is rejected without touching the others.
 * Every level is decided once, under the purchase's row lock, and recorded in `referral_payouts`,
 * whose primary key forbids a second payout per level; every transfer carries the idempotency key
 * `<purchase id>:<level>`. With an in-database gateway the purchases settle in one transaction.
 */
export async function processReferralPayoutsBatch(
  ctx: PayoutContext,
  requests: PayoutRequest[],
  by: ActedBy,
): Promise<(PayoutResult | PayoutRejection)[]> {
  const { gateway } = ctx;
  // A pause holds in-database payouts too (the breaker does not: they never call the treasury);
  // network payouts ask the gate one by one, as each may be the probe.
  if (gateway.kind === 'in-database' && ctx.gate) {
    const admission = await ctx.gate.admitInDatabase();
    if (admission.kind === 'shut')
      return requests.map((r) => rejected(r.purchaseId, new TreasuryGateShut(admission.view)));
  }
  const batch =
    gateway.kind === 'in-database' && requests.length > 1
      ? await settleBatchInDatabase({ ...ctx, gateway }, requests, by)
      : null;
  const results =
    batch ??
    (await Promise.all(
      requests.map((request) => {
        const one = { ...ctx, logger: request.logger ?? ctx.logger };
        const settled =
          gateway.kind === 'in-database'
            ? settleOneInDatabase({ ...one, gateway }, request, by)
            : settleExternally({ ...one, gateway }, request, by);
        return settled.catch((error: unknown) => rejected(request.purchaseId, error));
      }),
    ));
  results.forEach((result, i) => {
    if (result.status !== 'rejected' && result.changed && result.failure === null && isSettled(result.status)) {
      (requests[i]!.logger ?? ctx.logger).info(
        {
          purchaseId: result.purchaseId,
          actor: by.actor,
          operator: by.operator ?? undefined,
          status: result.status,
          paid: result.paid,
        },
        'referral payout settled',
      );
    }
  });
  return results;
}
