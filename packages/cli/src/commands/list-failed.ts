import { type FailedPayoutItem, listFailedPayouts } from '@referrals/core';
import { PROGRAM } from '../arguments.ts';
import { type CommandContext, printJson, printLine } from '../command-context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { money, table, timestamp, truncate } from '../format.ts';

export const RETRY_ALL = `npm run ${PROGRAM} -- --process-all-failed`;
export const RETRY_ONE = `npm run ${PROGRAM} -- --process <purchase-id>`;

/** Listing is a read: it exits 0 even when failures are listed. */
export async function listFailed(ctx: CommandContext, limit: number, cursor: string | undefined): Promise<ExitCode> {
  const page = await listFailedPayouts(ctx.db, { limit, cursor, order: 'newest' });
  if (ctx.json) {
    printJson(ctx, page);
    return EXIT.ok;
  }
  if (page.items.length === 0) {
    printLine(
      ctx,
      page.total === 0 ? 'No failed referral payouts.' : `No more failed referral payouts (${page.total} in all).`,
    );
    return EXIT.ok;
  }
  printLine(
    ctx,
    `${page.total} purchase${page.total === 1 ? '' : 's'} with failed referral payouts` +
      (page.items.length < page.total ? ` (${page.items.length} shown, newest first)` : '') +
      ':',
  );
  printLine(ctx);
  printLine(ctx, failedTable(page.items));
  printLine(ctx);
  if (page.nextCursor !== null)
    printLine(ctx, `Next page:  npm run ${PROGRAM} -- --list-failed --limit ${limit} --cursor ${page.nextCursor}`);
  printLine(ctx, `Retry all:  ${RETRY_ALL}`);
  printLine(ctx, `Retry one:  ${RETRY_ONE}`);
  return EXIT.ok;
}

export function failedTable(items: readonly FailedPayoutItem[]): string {
  return table(items, [
    { header: 'FAILED AT', value: (i) => timestamp(i.failedAt) },
    { header: 'PURCHASE', value: (i) => i.purchaseId },
    { header: 'PRICE', value: (i) => money(i.price, i.currency), align: 'right' },
    { header: 'ATTEMPTS', value: (i) => String(i.attempts), align: 'right' },
    { header: 'LAST ERROR', value: (i) => truncate(i.lastError) },
  ]);
}
