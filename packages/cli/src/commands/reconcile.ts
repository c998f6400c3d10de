import { DRIFT_KINDS, type DriftItem, type DriftKind, reconcile, type ReconcileProgress } from '@referrals/core';
import { type CommandContext, type Output, printJson, printLine } from '../command-context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { fields, money, NONE, table, timestamp } from '../format.ts';
import { PROGRAM } from '../arguments.ts';
import { osUser } from '../operator.ts';

const HEADINGS: Record<DriftKind, string> = {
  unrecorded_transfer: 'Unrecorded transfers: the treasury paid, we do not record the level as paid',
  missing_at_treasury: 'Missing at the treasury: we record the level as paid, the treasury has no such transfer',
  mismatch: 'Mismatches: both have the transfer, amount, currency or beneficiary differ',
};

/**
 * Compares our payouts with the treasury's books and, with `fix`, records the unrecorded transfers
 * that match our plan; exit 1 while any drift remains.
 */
export async function reconcileWithTreasury(
  ctx: CommandContext,
  since: Date | undefined,
  fix: boolean,
): Promise<ExitCode> {
  const progress = reconcileProgress(ctx.stderr);
  const report = await reconcile(ctx.reconciliation, {
    actor: 'cli',
    operator: osUser(),
    fix,
    since,
    onProgress: progress.update,
  });
  progress.finish();
  const drift =
    report.driftCounts.unrecorded_transfer + report.driftCounts.missing_at_treasury + report.driftCounts.mismatch;

  if (ctx.json) {
    printJson(ctx, report);
    return drift > 0 ? EXIT.stillFailed : EXIT.ok;
  }
  printLine(ctx, `Reconciliation of referral payouts with the treasury (${report.gateway} gateway)`);
  printLine(
    ctx,
    fields([
      ['Window', `since ${timestamp(report.since)}`],
      ['Checked at', timestamp(report.checkedAt)],
      ['Treasury transfers', String(report.treasuryTransfers)],
      ['Recorded levels', String(report.recordedLevels)],
      [
        'Drift',
        drift === 0
          ? 'none'
          : `${drift} (${DRIFT_KINDS.filter((k) => report.driftCounts[k] > 0)
              .map((k) => `${k.replace(/_/g, ' ')} ${report.driftCounts[k]}`)
              .join(', ')})`,
      ],
    ]),
  );
  if (report.fixedCount > 0) {
    printLine(ctx);
    printLine(ctx, `Recorded as paid, as the treasury paid them (no money sent) (${report.fixedCount})`);
    printLine(
      ctx,
      table(report.fixed, [
        { header: 'PURCHASE', value: (f) => f.purchaseId },
        { header: 'LEVEL', value: (f) => f.level },
        { header: 'AMOUNT', align: 'right', value: (f) => money(f.amount, f.currency) },
        { header: 'TREASURY REFERENCE', value: (f) => f.reference },
        { header: 'PURCHASE NOW', value: (f) => f.purchaseStatus.replace('_', ' ') },
      ]),
    );
  }
  if (report.note) {
    printLine(ctx);
    printLine(ctx, `Nothing to compare: ${report.note}.`);
  }
  for (const kind of DRIFT_KINDS) {
    const items = report.drift.filter((d) => d.kind === kind);
    if (items.length === 0) continue;
    printLine(ctx);
    printLine(ctx, `${HEADINGS[kind]} (${report.driftCounts[kind]})`);
    printLine(ctx, driftTable(kind, items));
  }
  if (report.driftTruncated) {
    printLine(ctx);
    printLine(
      ctx,
      `Listed ${report.drift.length} of ${drift}; --json has the same first ${report.drift.length}, narrow the window with --since for the rest.`,
    );
  }
  const fixable = report.drift.filter((d) => d.fixable).length;
  if (fixable > 0 && !fix) {
    printLine(ctx);
    printLine(
      ctx,
      `${fixable} unrecorded transfer${fixable === 1 ? '' : 's'} match the level we planned; record them as paid (no money is sent):`,
    );
    printLine(ctx, `  npm run ${PROGRAM} -- --reconcile --since ${report.since} --fix`);
  }
  return drift > 0 ? EXIT.stillFailed : EXIT.ok;
}

function driftTable(kind: DriftKind, items: DriftItem[]): string {
  const purchase = { header: 'PURCHASE', value: (d: DriftItem) => d.purchaseId };
  const level = { header: 'LEVEL', value: (d: DriftItem) => d.level };
  const ours = {
    header: 'OURS',
    align: 'right' as const,
    value: (d: DriftItem) => (d.ours ? `${money(d.ours.amount, d.ours.currency)} ${d.ours.status}` : 'no such level'),
  };
  const treasury = {
    header: 'TREASURY',
    align: 'right' as const,
    value: (d: DriftItem) => (d.treasury ? money(d.treasury.amount, d.treasury.currency) : NONE),
  };
  switch (kind) {
    case 'unrecorded_transfer':
      return table(items, [
        purchase,
        level,
        ours,
        treasury,
        { header: 'TREASURY REFERENCE', value: (d) => d.treasury!.reference },
        { header: 'MATCHES OUR PLAN', value: (d) => (d.fixable ? 'yes' : differences(d) || 'no') },
      ]);
    case 'missing_at_treasury':
      return table(items, [
        purchase,
        level,
        { header: 'AMOUNT', align: 'right', value: (d) => money(d.ours!.amount, d.ours!.currency) },
        { header: 'OUR REFERENCE', value: (d) => d.ours!.reference ?? NONE },
        { header: 'PAID AT', value: (d) => timestamp(d.ours!.paidAt) },
      ]);
    case 'mismatch':
      return table(items, [purchase, level, ours, treasury, { header: 'DIFFERS', value: differences }]);
  }
}

/** "amount, beneficiary 9f1c… vs 03ab…": what differs between the two sides. */
function differences(d: DriftItem): string {
  if (!d.ours || !d.treasury) return '';
  const parts: string[] = [];
  if (d.ours.amount !== d.treasury.amount) parts.push('amount');
  if (d.ours.currency !== d.treasury.currency) parts.push('currency');
  if (d.ours.beneficiaryId !== d.treasury.beneficiaryId)
    parts.push(`beneficiary ${d.ours.beneficiaryId} vs ${d.treasury.beneficiaryId}`);
  return parts.join(', ');
}

const PROGRESS_EVERY_PAGES = 20;

/** A redrawn line on a terminal; a line every few pages otherwise, so a long run shows it is alive. */
function reconcileProgress(out: Output) {
  let shown = false;
  const line = (p: ReconcileProgress) =>
    p.phase === 'treasury'
      ? `${PROGRAM}: read ${p.items} treasury transfers (${p.pages} pages), drift so far ${p.drift}`
      : `${PROGRAM}: looked up ${p.items} paid levels the listing did not contain, drift so far ${p.drift}`;
  return {
    update(p: ReconcileProgress) {
      if (out.isTTY) {
        out.write(`\r\x1b[K${line(p)}`);
        shown = true;
      } else if (p.pages % PROGRESS_EVERY_PAGES === 0) {
        out.write(`${line(p)}\n`);
      }
    },
    finish() {
      if (shown) out.write('\n');
    },
  };
}
