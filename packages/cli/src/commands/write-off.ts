import { getReferralPayoutStatus, writeOffReferralPayouts } from '@referrals/core';
import { type CommandContext, printJson, printLine } from '../command-context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { osUser } from '../operator.ts';
import { renderStatus } from './status.ts';

/**
 * Writes off a failed purchase's unpaid referral payouts with a reason. A purchase that is not
 * failed is refused (exit 1) and left as it is.
 */
export async function writeOff(ctx: CommandContext, purchaseId: string, reason: string): Promise<ExitCode> {
  const result = await writeOffReferralPayouts(ctx.db, purchaseId, { actor: 'cli', operator: osUser(), note: reason });
  const view = await getReferralPayoutStatus(ctx.db, purchaseId);
  if (ctx.json) {
    printJson(ctx, { ...view, writtenOff: result.writtenOff });
  } else {
    const levels = result.writtenOff.length === 0 ? 'no unpaid level' : result.writtenOff.join(' and ');
    printLine(ctx, `Written off (${levels}); levels already paid stay paid.\n\n${renderStatus(view)}`);
  }
  return EXIT.ok;
}
