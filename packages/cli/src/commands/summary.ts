import { payoutSummary } from '@referrals/core';
import { type CommandContext, printJson, printLine } from '../command-context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { duration, fields } from '../format.ts';
import { failedTable, RETRY_ALL } from './list-failed.ts';

/** Health figures; a read, so it exits 0 whatever they show. */
export async function showSummary(ctx: CommandContext): Promise<ExitCode> {
  const summary = await payoutSummary(ctx.db);
  if (ctx.json) {
    printJson(ctx, summary);
    return EXIT.ok;
  }
  const { counts } = summary;
  const width = String(Math.max(...Object.values(counts), summary.outbox.unpublished)).length;
  const n = (value: number) => String(value).padStart(width);
  printLine(
    ctx,
    fields([
      ['Queued', `${n(counts.queued)}${counts.queued > 0 ? `  (oldest waiting ${duration(summary.oldestQueuedAgeSeconds)})` : ''}`],
      ['Completed', n(counts.completed)],
      ['Failed', n(counts.failed)],
      ['Not applicable', n(counts.not_applicable)],
      ['Outbox backlog', `${n(summary.outbox.unpublished)}${summary.outbox.unpublished > 0 ? `  (oldest ${duration(summary.outbox.oldestAgeSeconds)})` : ''}`],
      ['Failures', `${summary.failuresLastHour} in the last hour, ${summary.failuresLastDay} in the last day`],
    ]),
  );
  if (summary.recentFailures.length > 0) {
    printLine(ctx);
    printLine(ctx, 'Most recent failures');
    printLine(ctx, failedTable(summary.recentFailures));
    printLine(ctx);
    printLine(ctx, `Retry all:  ${RETRY_ALL}`);
  }
  return EXIT.ok;
}
