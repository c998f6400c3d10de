import { userInfo } from 'node:os';
import { pausePayouts, resumePayouts, summarizeGate, type TreasuryGateView } from '@referrals/core';
import { type CommandContext, printJson, printLine } from '../command-context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { timestamp } from '../format.ts';

/** The audit trail names the operating-system user who ran the command. */
export function operator(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

function report(ctx: CommandContext, view: TreasuryGateView, headline: string): void {
  if (ctx.json) printJson(ctx, summarizeGate(view));
  else printLine(ctx, headline);
}

/** Pauses payouts for every worker; exit 1 when they already are (the message says by whom). */
export async function pause(ctx: CommandContext, reason: string): Promise<ExitCode> {
  const view = await pausePayouts(ctx.db, { actor: 'cli', operator: operator(), reason }, ctx.logger);
  report(
    ctx,
    view,
    `Referral payouts paused by ${view.by} at ${timestamp(view.since.toISOString())}: ${view.reason}\nResume with:  npm run manage-referral-payouts -- --resume`,
  );
  return EXIT.ok;
}

/** Resumes paused payouts; exit 1 when they are not paused. */
export async function resume(ctx: CommandContext): Promise<ExitCode> {
  const view = await resumePayouts(ctx.db, { actor: 'cli', operator: operator() }, ctx.logger);
  report(ctx, view, 'Referral payouts resumed: the workers drain the queued backlog now.');
  return EXIT.ok;
}
