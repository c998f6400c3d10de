import { getReferralPayoutStatus, type ReferralPayoutStatusView } from '@referrals/core';
import { type CommandContext, printJson, printLine } from '../command-context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import {
  fields,
  money,
  NONE,
  orNone,
  rate,
  statusLabel,
  statusWithReason,
  table,
  timestamp,
  truncate,
} from '../format.ts';

/** Any purchase that exists exits 0 whatever its payout status: this command only reads. */
export async function showStatus(ctx: CommandContext, purchaseId: string): Promise<ExitCode> {
  const view = await getReferralPayoutStatus(ctx.db, purchaseId);
  if (ctx.json) printJson(ctx, view);
  else printLine(ctx, renderStatus(view));
  return EXIT.ok;
}

export function renderStatus(view: ReferralPayoutStatusView): string {
  const total = view.payouts.reduce((sum, p) => sum + p.amount, 0);
  const currency = view.payouts[0]?.currency;
  const parts = [
    fields([
      ['Purchase', view.purchaseId],
      ['Referral payout', statusWithReason(view.status, view.reason)],
      ['Attempts', String(view.attempts)],
      ['Last error', orNone(view.lastError)],
      ['Queued at', timestamp(view.queuedAt)],
      ['Completed at', timestamp(view.completedAt)],
      ['Total payouts', currency === undefined ? NONE : money(total, currency)],
    ]),
  ];
  parts.push(
    view.payouts.length === 0
      ? 'Payouts: none'
      : `Payouts\n${table(view.payouts, [
          { header: 'LEVEL', value: (p) => p.level },
          { header: 'BENEFICIARY', value: (p) => p.beneficiaryId },
          { header: 'RATE', value: (p) => rate(p.rateBps), align: 'right' },
          { header: 'AMOUNT', value: (p) => money(p.amount, p.currency), align: 'right' },
          { header: 'STATUS', value: (p) => p.status },
          { header: 'PAID AT', value: (p) => timestamp(p.paidAt) },
          {
            header: 'REFERENCE / ERROR',
            value: (p) => (p.status === 'paid' ? orNone(p.reference) : truncate(p.error)),
          },
        ])}`,
  );
  parts.push(
    view.events.length === 0
      ? 'History: none'
      : `History\n${table(view.events, [
          { header: 'AT', value: (e) => timestamp(e.at) },
          { header: 'FROM', value: (e) => (e.from === null ? NONE : statusLabel(e.from)) },
          { header: 'TO', value: (e) => statusLabel(e.to) },
          { header: 'ACTOR', value: (e) => (e.operator === null ? e.actor : `${e.actor} (${e.operator})`) },
          { header: 'ATTEMPT', value: (e) => String(e.attempt), align: 'right' },
          { header: 'ERROR / NOTE', value: (e) => truncate(e.error ?? e.note, 80) },
        ])}`,
  );
  return parts.join('\n\n');
}
