import { getReferralPayoutStatus, PayoutFailedError, processReferralPayouts } from '@referrals/core';
import { type CommandContext, printJson, printLine } from '../command-context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { money, statusLabel, statusWithReason } from '../format.ts';
import { renderStatus } from './status.ts';

/** Nothing is left to pay: the purchase needs no operator. */
export const isSettled = (status: string | null) => status === 'completed' || status === 'not_applicable';

/**
 * Runs the one payout function for one purchase, then shows the resulting status. Exit 1 when the
 * purchase is not settled afterwards (still failed, or queued with a recorded error).
 */
export async function processOne(ctx: CommandContext, purchaseId: string): Promise<ExitCode> {
  let error: string | null = null;
  let changed = false;
  let paid: { level: string; amount: number; currency: string }[] = [];
  try {
    const outcome = await processReferralPayouts(ctx.payouts, purchaseId, { actor: 'cli' });
    changed = outcome.changed;
    paid = outcome.paid;
  } catch (caught) {
    if (!(caught instanceof PayoutFailedError)) throw caught;
    error = caught.message;
    changed = true;
  }
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
