import type { Actor } from '../db/types.ts';
import { TreasuryGateShut } from '../treasury/treasury-gate.ts';
import type { ActedBy, PayoutContext } from './payout-context.ts';
import { listFailedPayouts, MAX_FAILED_PAGE } from './payout-queries.ts';
import { errorMessage, isSettled, type PayoutResultStatus } from './payout-result.ts';
import { processReferralPayouts } from './process-referral-payouts.ts';

export interface RetriedPayout {
  purchaseId: string;
  /** Where the purchase stands after this run's attempt. */
  status: PayoutResultStatus;
  /** Why it is still not settled; null once settled, whoever settled it. */
  error: string | null;
}

export interface RetryCounts {
  /** Settled (completed or nothing to pay). */
  completed: number;
  failed: number;
}

export interface RetryReport {
  total: number;
  completed: number;
  stillFailed: number;
  notApplicable: number;
  /** Left out because the run was aborted. */
  notAttempted: number;
  /** In the order the purchases failed, oldest first. */
  results: RetriedPayout[];
}

export interface RetryOptions {
  actor: Actor;
  /** The operator who asked for the run, recorded in every retried purchase's history. */
  operator?: string | null;
  /** Purchases processed at once. */
  concurrency: number;
  /** Called once the failed purchases are counted, before any is retried. */
  onStart?: (total: number) => void;
  onProgress?: (item: RetriedPayout, counts: RetryCounts) => void;
  /** Stops taking new purchases; those under way finish. */
  signal?: AbortSignal;
}

/**
 * Retries every purchase that is `failed` when the run starts, oldest failure first, a bounded number
 * at a time, and carries on past purchases that fail again. Safe alongside a running worker: each
 * purchase goes through processReferralPayouts. Refused as a whole (TreasuryGateShut) while payouts
 * are paused or the treasury's breaker is open.
 */
export async function retryFailedPayouts(ctx: PayoutContext, options: RetryOptions): Promise<RetryReport> {
  // While the treasury gate is shut every purchase would be refused: say so once instead.
  const gate = await ctx.gate?.view();
  if (gate && gate.state !== 'closed') throw new TreasuryGateShut(gate);
  // Snapshot first: a purchase that fails again gets a new failure time and would otherwise come
  // round a second time in an oldest-first walk.
  const purchaseIds = await failedPurchaseIds(ctx);
  const results: (RetriedPayout | undefined)[] = new Array(purchaseIds.length);
  const counts: RetryCounts = { completed: 0, failed: 0 };
  options.onStart?.(purchaseIds.length);

  let next = 0;
  const lane = async () => {
    while (!options.signal?.aborted && next < purchaseIds.length) {
      const index = next++;
      const result = await retryOne(ctx, purchaseIds[index]!, { actor: options.actor, operator: options.operator });
      results[index] = result;
      if (isSettled(result.status)) counts.completed++;
      else counts.failed++;
      options.onProgress?.(result, { ...counts });
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, purchaseIds.length) }, lane));

  const done = results.filter((r): r is RetriedPayout => r !== undefined);
  return {
    total: purchaseIds.length,
    completed: done.filter((r) => r.status === 'completed').length,
    stillFailed: done.filter((r) => !isSettled(r.status)).length,
    notApplicable: done.filter((r) => r.status === 'not_applicable').length,
    notAttempted: purchaseIds.length - done.length,
    results: done,
  };
}

async function failedPurchaseIds(ctx: PayoutContext): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await listFailedPayouts(ctx.db, { limit: MAX_FAILED_PAGE, cursor, order: 'oldest' });
    ids.push(...page.items.map((i) => i.purchaseId));
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return ids;
}

async function retryOne(ctx: PayoutContext, purchaseId: string, by: ActedBy): Promise<RetriedPayout> {
  try {
    const result = await processReferralPayouts(ctx, purchaseId, by);
    return {
      purchaseId,
      status: result.status,
      error: isSettled(result.status) ? null : (result.failure?.message ?? null),
    };
  } catch (error) {
    // The bulk run carries on past one purchase it could not process; the operator sees it as failed.
    ctx.logger.error({ err: error, purchaseId }, 'referral payout could not be processed');
    return { purchaseId, status: 'failed', error: errorMessage(error) };
  }
}
