import { type PayoutSummary, payoutSummary } from '@referrals/core';
import { type CommandContext, printJson, printLine } from '../command-context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { duration, fields, orNone, timestamp } from '../format.ts';
import { failedTable, RETRY_ALL } from './list-failed.ts';

/** Health figures; a read, so it exits 0 whatever they show. */
export async function showSummary(ctx: CommandContext): Promise<ExitCode> {
  const summary = await payoutSummary(ctx.db, { stuckQueuedAfterSeconds: ctx.config.stuckQueuedAfterSeconds });
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
      [
        'Queued',
        `${n(counts.queued)}${counts.queued > 0 ? `  (oldest waiting ${duration(summary.oldestQueuedAgeSeconds)})` : ''}`,
      ],
      [
        'Stuck queued',
        `${n(summary.stuckQueued.count)}  (no live job for over ${duration(summary.stuckQueued.afterSeconds)}${summary.stuckQueued.count > 0 ? '; the worker re-enqueues them' : ''})`,
      ],
      ['Completed', n(counts.completed)],
      ['Failed', n(counts.failed)],
      ['Not applicable', n(counts.not_applicable)],
      [
        'Outbox backlog',
        `${n(summary.outbox.unpublished)}${summary.outbox.unpublished > 0 ? `  (oldest ${duration(summary.outbox.oldestAgeSeconds)})` : ''}`,
      ],
      ['Failures', `${summary.failuresLastHour} in the last hour, ${summary.failuresLastDay} in the last day`],
      ['Treasury', treasuryLine(summary.treasury)],
      ...(summary.treasury.lastError === null
        ? []
        : [['Last treasury error', orNone(summary.treasury.lastError)] as [string, string]]),
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

/** "closed", or why transfers are stopped and since when. */
function treasuryLine(gate: PayoutSummary['treasury']): string {
  const since = `since ${timestamp(gate.since)}`;
  switch (gate.state) {
    case 'closed':
      return `closed (transfers go through) ${since}`;
    case 'paused':
      return `PAUSED by ${gate.by} ${since}: ${gate.reason}`;
    default:
      return `${gate.state === 'open' ? 'OPEN' : 'HALF-OPEN (probing)'} circuit breaker ${since}: ${gate.reason}`;
  }
}
