import { getReferralPayoutStatus, isSettled, processReferralPayouts } from '@referrals/core';
import { type CommandContext, printJson, printLine } from '../command-context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { money, statusLabel, statusWithReason } from '../format.ts';
import { osUser } from '../operator.ts';
import { renderStatus } from './status.ts';

/**
 * Runs the one payout function for one purchase, then shows the resulting status. Exit 1 when the
 * purchase is not settled afterwards (still failed, or queued with a recorded error).
 */
export async function processOne(ctx: CommandContext, purchaseId: string): Promise<ExitCode> {
  const result = await processReferralPayouts(ctx.payouts, purchaseId, { actor: 'cli', operator: osUser() });
  const { changed, paid } = result;
  const error = result.failure && `referral payout of purchase ${purchaseId} failed: ${result.failure.message}`;
  // Read back what is recorded now, whoever settled it (this call, or a worker racing it).
  const view = await getReferralPayoutStatus(ctx.db, purchaseId);

  if (ctx.json) {
    printJson(ctx, { ...view, processed: { changed, paid, error } });
  } else {
    const headline = error
      ? `Processing failed: ${error}`
      : !changed
        ? `Nothing to do: referral payouts were already ${statusLabel(view.status)}.`
        : paid.length > 0
          ? `Paid ${paid.map((p) => `${p.level} ${money(p.amount, p.currency)}`).join(', ')}.`
          : `Settled as ${statusWithReason(view.status, view.reason)}.`;
    printLine(ctx, `${headline}\n\n${renderStatus(view)}`);
  }
  return isSettled(view.status) ? EXIT.ok : EXIT.stillFailed;
}
