import { type PayoutGatewayKind, switchDeploymentGateway } from '@referrals/core';
import { type CommandContext, printJson, printLine } from '../command-context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { operator } from './pause.ts';

/**
 * The explicit switch of the database's payout gateway. Refused (a conflict, exit 1) while payouts
 * are left to settle through the old one; the message says which.
 */
export async function setGateway(ctx: CommandContext, gateway: PayoutGatewayKind): Promise<ExitCode> {
  const result = await switchDeploymentGateway(ctx.db, gateway, operator());
  if (ctx.json) {
    printJson(ctx, result);
    return EXIT.ok;
  }
  if (!result.changed) {
    printLine(ctx, `Referral payouts already go through the "${gateway}" gateway; nothing changed.`);
    return EXIT.ok;
  }
  printLine(
    ctx,
    `Referral payouts now go through the "${gateway}" gateway${result.from ? ` (was "${result.from}")` : ''}.\n` +
      `Restart the API and every worker with PAYOUT_GATEWAY=${gateway}: processes still on the old gateway keep paying through it until they stop, and will not start again.`,
  );
  return EXIT.ok;
}
