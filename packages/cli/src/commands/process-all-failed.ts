import { errorMessage, listFailedPayouts, MAX_FAILED_PAGE, PayoutFailedError, processReferralPayouts } from '@referrals/core';
import { type CommandContext, printJson, printLine } from '../command-context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { fields, table, truncate } from '../format.ts';
import { createProgress } from '../progress.ts';
import { RETRY_ONE } from './list-failed.ts';
import { isSettled } from './process-one.ts';

export interface BulkResult {
  purchaseId: string;
  /** The purchase's referral payout status after this run's attempt. */
  status: string;
  error: string | null;
}

/**
 * Retries every purchase that is failed when the run starts, oldest failure first, a bounded number
 * at a time, and carries on past purchases that fail again. Exit 1 when any is still failed.
 */
export async function processAllFailed(ctx: CommandContext, concurrency: number, signal: AbortSignal): Promise<ExitCode> {
  // Snapshot first: a purchase that fails again gets a new failure time and would otherwise come
  // round a second time in an oldest-first walk.
  const purchaseIds = await failedPurchaseIds(ctx);
  const results: (BulkResult | undefined)[] = new Array(purchaseIds.length);
  const counts = { completed: 0, failed: 0 };
  const progress = createProgress(ctx.stderr, purchaseIds.length);

  let next = 0;
  const lane = async () => {
    while (!signal.aborted && next < purchaseIds.length) {
      const index = next++;
      const result = await retry(ctx, purchaseIds[index]!);
      results[index] = result;
      if (isSettled(result.status)) counts.completed++;
      else counts.failed++;
      progress.advance(result, counts);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, purchaseIds.length) }, lane));
  progress.finish();

  const done = results.filter((r): r is BulkResult => r !== undefined);
  const stillFailed = done.filter((r) => !isSettled(r.status));
  const report = {
    total: purchaseIds.length,
    completed: done.filter((r) => r.status === 'completed').length,
    stillFailed: stillFailed.length,
    notApplicable: done.filter((r) => r.status === 'not_applicable').length,
    notAttempted: purchaseIds.length - done.length,
    results: done,
  };

  if (ctx.json) {
    printJson(ctx, report);
  } else if (report.total === 0) {
    printLine(ctx, 'No failed referral payouts to process.');
  } else {
    printLine(ctx, `Processed failed referral payouts, oldest first (concurrency ${concurrency})${signal.aborted ? ', interrupted' : ''}:`);
    printLine(
      ctx,
      fields([
        ['Total', String(report.total)],
        ['Completed', String(report.completed)],
        ['Still failed', String(report.stillFailed)],
        ['Not applicable', String(report.notApplicable)],
        ...(report.notAttempted > 0 ? ([['Not attempted', String(report.notAttempted)]] as [string, string][]) : []),
      ]),
    );
    if (stillFailed.length > 0) {
      printLine(ctx);
      printLine(ctx, 'Still failed');
      printLine(ctx, table(stillFailed, [
        { header: 'PURCHASE', value: (r) => r.purchaseId },
        { header: 'ERROR', value: (r) => truncate(r.error, 80) },
      ]));
      printLine(ctx);
      printLine(ctx, `Retry one:  ${RETRY_ONE}`);
    }
  }
  return report.stillFailed > 0 || report.notAttempted > 0 ? EXIT.stillFailed : EXIT.ok;
}

async function failedPurchaseIds(ctx: CommandContext): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await listFailedPayouts(ctx.db, { limit: MAX_FAILED_PAGE, cursor, order: 'oldest' });
    ids.push(...page.items.map((i) => i.purchaseId));
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return ids;
}

async function retry(ctx: CommandContext, purchaseId: string): Promise<BulkResult> {
  try {
    const outcome = await processReferralPayouts(ctx.payouts, purchaseId, { actor: 'cli' });
    return { purchaseId, status: outcome.status, error: null };
  } catch (error) {
    // A failed attempt is recorded by the payout function; its outcome says where the purchase stands
    // (another processor may have settled it meanwhile).
    if (error instanceof PayoutFailedError) {
      const { status } = error.outcome;
      return { purchaseId, status, error: isSettled(status) ? null : errorMessage(error.cause ?? error) };
    }
    ctx.logger.error({ err: error, purchaseId }, 'referral payout could not be processed');
    return { purchaseId, status: 'failed', error: errorMessage(error) };
  }
}
