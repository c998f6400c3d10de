import type { Tx } from '../db/database.ts';
import type { PurchaseRow } from '../db/types.ts';
import { notFound } from '../errors.ts';
import type { ActedBy, InDatabaseGateway, PayoutContext, PayoutRequest } from './payout-context.ts';
import { isSettled, type PayoutRejection, type PayoutResult, rejected, resultOf } from './payout-result.ts';
import { recordedLevels, recordLevelsPaid } from './level-store.ts';
import { completeAll, lockForPayout, settleNotApplicable } from './payout-store.ts';
import {
  foreignLevels,
  isConfirmed,
  type LevelToPay,
  notConfirmed,
  paidLevel,
  planLevels,
  transferRequest,
} from './plan-levels.ts';
import { recordFailure } from './record-failure.ts';

/**
 * Settlement through an in-database gateway, whose transfer is a database write: the levels, their
 * ledger credits and the purchase's completion commit together under the purchase's row lock, so
 * the effect is exactly once without a lease.
 */

/**
 * Several purchases in one transaction (the worker's drain rate is bound by statements per
 * purchase). Null when that transaction failed: nothing was committed, and the caller settles
 * each purchase on its own so a failure is recorded against the purchase that caused it.
 */
export async function settleBatchInDatabase(
  ctx: PayoutContext<InDatabaseGateway>,
  requests: PayoutRequest[],
  by: ActedBy,
): Promise<(PayoutResult | PayoutRejection)[] | null> {
  const ids = requests.map((r) => r.purchaseId);
  try {
    const settled = await ctx.db.transaction().execute((trx) => settleLocked(trx, ctx, ids, by));
    return ids.map((id) => settled.get(id)!);
  } catch (error) {
    ctx.logger.warn(
      { err: error, purchases: ids.length },
      'batch of referral payouts failed; settling them one by one',
    );
    return null;
  }
}

/** One purchase in its own transaction; if that fails, the failed attempt is recorded on its own. */
export async function settleOneInDatabase(
  ctx: PayoutContext<InDatabaseGateway>,
  request: PayoutRequest,
  by: ActedBy,
): Promise<PayoutResult | PayoutRejection> {
  const { purchaseId } = request;
  try {
    return (await ctx.db.transaction().execute((trx) => settleLocked(trx, ctx, [purchaseId], by))).get(purchaseId)!;
  } catch (error) {
    return recordFailure(ctx, purchaseId, { ...by, finalAttempt: request.finalAttempt }, [], error);
  }
}

/**
 * Locks the purchases, decides each one's levels, transfers all of them in one call to the gateway,
 * records the levels paid and the purchases completed. Answers for every id: a purchase that does
 * not exist or is not confirmed is rejected; any other error rolls back the whole transaction.
 */
async function settleLocked(
  trx: Tx,
  ctx: PayoutContext<InDatabaseGateway>,
  purchaseIds: string[],
  by: ActedBy,
): Promise<Map<string, PayoutResult | PayoutRejection>> {
  const results = new Map<string, PayoutResult | PayoutRejection>();
  const locked = await lockForPayout(trx, purchaseIds);
  for (const id of purchaseIds) {
    if (!locked.some((l) => l.purchase.id === id)) results.set(id, rejected(id, notFound('purchase', id)));
  }
  const open = locked.filter(({ purchase }) => {
    if (!isConfirmed(purchase)) results.set(purchase.id, rejected(purchase.id, notConfirmed(purchase.id)));
    else if (isSettled(purchase.referral_payout_status)) results.set(purchase.id, resultOf(purchase, false, []));
    else return true;
    return false;
  });
  // Read under the locks just taken: a level another processor recorded while this one waited counts.
  const recorded = await recordedLevels(
    trx,
    open.map((l) => l.purchase.id),
  );

  const toComplete: { purchase: PurchaseRow; pending: LevelToPay[] }[] = [];
  for (const { purchase, chain } of open) {
    const earlier = recorded.get(purchase.id);
    if (earlier) {
      const foreign = foreignLevels(earlier, ctx.gateway.name);
      if (foreign) {
        results.set(purchase.id, rejected(purchase.id, foreign));
        continue;
      }
      toComplete.push({ purchase, pending: earlier.filter((l) => l.status !== 'paid') });
      continue;
    }
    const plan = planLevels(purchase, chain, ctx.minPayout);
    if (plan.levels.length > 0) toComplete.push({ purchase, pending: plan.levels });
    else results.set(purchase.id, resultOf(await settleNotApplicable(trx, purchase, by, plan.reason), true, []));
  }

  // Everything below commits or rolls back together, so the levels are recorded already paid.
  const pending = toComplete.flatMap((p) => p.pending);
  const transfers = await ctx.gateway.transfer(trx, pending.map(transferRequest));
  await recordLevelsPaid(
    trx,
    pending.map((level, i) => ({ ...level, reference: transfers[i]!.reference })),
    ctx.gateway.name,
  );
  const completed = await completeAll(
    trx,
    toComplete.map((c) => c.purchase),
    by,
  );
  for (const { purchase, pending: paid } of toComplete) {
    results.set(purchase.id, resultOf(completed.get(purchase.id)!, true, paid.map(paidLevel)));
  }
  return results;
}
