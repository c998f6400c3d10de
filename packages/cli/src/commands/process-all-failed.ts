import { isSettled, retryFailedPayouts } from '@referrals/core';
import { type CommandContext, printJson, printLine } from '../command-context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { fields, table, truncate } from '../format.ts';
import { osUser } from '../operator.ts';
import { createProgress } from '../progress.ts';
import { RETRY_ONE } from './list-failed.ts';

/** Retries every failed purchase through core, with a progress bar and a summary. Exit 1 when any is still failed. */
export async function processAllFailed(
  ctx: CommandContext,
  concurrency: number,
  signal: AbortSignal,
): Promise<ExitCode> {
  let progress: ReturnType<typeof createProgress> | undefined;
  const report = await retryFailedPayouts(ctx.payouts, {
    actor: 'cli',
    operator: osUser(),
    concurrency,
    signal,
    onStart: (total) => {
      progress = createProgress(ctx.stderr, total);
    },
    onProgress: (item, counts) => progress?.advance(item, counts),
  });
  progress?.finish();
  const stillFailed = report.results.filter((r) => !isSettled(r.status));

  if (ctx.json) {
    printJson(ctx, report);
  } else if (report.total === 0) {
    printLine(ctx, 'No failed referral payouts to process.');
  } else {
    printLine(
      ctx,
      `Processed failed referral payouts, oldest first (concurrency ${concurrency})${signal.aborted ? ', interrupted' : ''}:`,
    );
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
      printLine(
        ctx,
        table(stillFailed, [
          { header: 'PURCHASE', value: (r) => r.purchaseId },
          { header: 'ERROR', value: (r) => truncate(r.error, 80) },
        ]),
      );
      printLine(ctx);
      printLine(ctx, `Retry one:  ${RETRY_ONE}`);
    }
  }
  return report.stillFailed > 0 || report.notAttempted > 0 ? EXIT.stillFailed : EXIT.ok;
}
