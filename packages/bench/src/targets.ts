/** The targets from the benchmark issue, each with what this run measured and whether it meets it. */
import type { BenchResults, SummaryRow } from './report.ts';
import { ms } from './report-format.ts';
import type { DecouplingResult, DecouplingRun } from './scenarios/decoupling.ts';
import type { PgbenchResult } from './scenarios/pgbench.ts';
import { ratio, round } from './stats.ts';

const met = (ok: boolean | undefined): SummaryRow['met'] => (ok === undefined ? 'n/a' : ok ? 'yes' : 'no');
const isPgbench = (r: BenchResults['pgbench']): r is PgbenchResult => r !== undefined && !('skipped' in r);

function findRun(d: DecouplingResult | undefined, mode: DecouplingRun['mode'], treasury: string) {
  return d?.runs.find((r) => r.mode === mode && r.treasury === treasury);
}

export function summarizeTargets(results: BenchResults): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const pgb = isPgbench(results.pgbench) ? results.pgbench : undefined;
  const confirm = results.confirm?.createAndConfirm;
  const share = pgb && confirm ? ratio(confirm.confirmsPerSecond, pgb.main.tps) : undefined;
  const confirmOnly = results.confirm?.confirmOnly;
  const onlyShare = pgb && confirmOnly ? ratio(confirmOnly.confirmsPerSecond, pgb.main.tps) : undefined;
  rows.push({
    target: 'Confirm only ≥ 75 % of pgbench TPS of its own transaction',
    measured:
      pgb && confirmOnly
        ? `${confirmOnly.confirmsPerSecond} confirms/s vs ${pgb.main.tps} TPS = ${round((onlyShare ?? 0) * 100, 1)} %`
        : 'not run',
    met: met(onlyShare === undefined ? undefined : onlyShare >= 0.75),
  });
  rows.push({
    target: 'Create + confirm ≥ 40 % of pgbench TPS',
    measured:
      pgb && confirm
        ? `${confirm.confirmsPerSecond} confirms/s vs ${pgb.main.tps} TPS = ${round((share ?? 0) * 100, 1)} %`
        : 'not run',
    met: met(share === undefined ? undefined : share >= 0.4),
  });
  const d = results.decoupling;
  const base = findRun(d, 'outbox', '0 ms');
  for (const name of ['1 s', 'failing']) {
    const run = findRun(d, 'outbox', name);
    rows.push({
      target: `Confirm p99 with a ${name === '1 s' ? '1 s' : 'failing'} gateway ≤ 1.1× the 0 ms case`,
      measured: run && base ? `${ms(run.confirm.p99)} vs ${ms(base.confirm.p99)} = ${run.p99Ratio}×` : 'not run',
      met: met(run && base ? run.p99Ratio <= 1.1 : undefined),
    });
  }
  const async1s = findRun(d, 'outbox', '1 s');
  const sync1s = findRun(d, 'synchronous', '1 s');
  const better = async1s && sync1s ? ratio(sync1s.confirm.p99, async1s.confirm.p99) : undefined;
  rows.push({
    target: 'Confirm p99 at 1 s ≥ 10× better than the synchronous baseline',
    measured:
      async1s && sync1s
        ? `${ms(async1s.confirm.p99)} vs ${ms(sync1s.confirm.p99)} synchronous = ${better}× better`
        : 'not run',
    met: met(better === undefined ? undefined : better >= 10),
  });
  const e2e = results.endToEnd;
  rows.push({
    target: `End-to-end p50 ≤ 25 ms at ${e2e?.rate ?? 100}/s`,
    measured: e2e ? ms(e2e.total.p50) : 'not run',
    met: met(e2e ? e2e.total.p50 <= 25 && e2e.notCompleted === 0 : undefined),
  });
  rows.push({
    target: `End-to-end p99 ≤ 150 ms at ${e2e?.rate ?? 100}/s`,
    measured: e2e ? `${ms(e2e.total.p99)} (max ${ms(e2e.total.max)})` : 'not run',
    met: met(e2e ? e2e.total.p99 <= 150 && e2e.notCompleted === 0 : undefined),
  });
  const http = results.endToEndHttp;
  rows.push({
    target: `End-to-end through the http gateway (instant treasury) at ${http?.rate ?? 50}/s: p50 ≤ 25 ms, p99 ≤ 150 ms`,
    measured: http ? `p50 ${ms(http.total.p50)}, p99 ${ms(http.total.p99)} (max ${ms(http.total.max)})` : 'not run',
    met: met(http ? http.total.p50 <= 25 && http.total.p99 <= 150 && http.notCompleted === 0 : undefined),
  });
  const drain = results.drain;
  // The targets are judged on the default settings; other WORKER_CONCURRENCY values are shown in section 5.
  const compared =
    drain?.drains.filter(
      (run) => run.workerConcurrency === undefined && drain.noop.some((n) => n.processes === run.processes),
    ) ?? [];
  if (compared.length === 0) rows.push({ target: 'Drain ≥ no-op pg-boss throughput', measured: 'not run', met: 'n/a' });
  for (const run of compared) {
    const noop = drain!.noop.find((n) => n.processes === run.processes)!;
    rows.push({
      target: `Drain ≥ no-op pg-boss throughput (${run.processes} process${run.processes > 1 ? 'es' : ''})`,
      measured: `${run.steadyPerSecond} purchases/s vs ${noop.steadyPerSecond} no-op jobs/s = ${ratio(run.steadyPerSecond, noop.steadyPerSecond)}×`,
      met: met(!run.timedOut && run.steadyPerSecond >= noop.steadyPerSecond),
    });
  }
  const slow = results.slowTreasury?.runs.find((r) => r.delayMs === 1000);
  rows.push({
    target: `Slow treasury (1 s): ${slow?.purchases ?? 600} purchases at ${slow?.rate ?? 50}/s paid by one worker within 15 s of the last confirm, ≤ 40 connections`,
    measured: slow
      ? `${slow.completed}/${slow.purchases} paid, last ${slow.secondsAfterLastConfirm ?? 'never'} s after the last confirm; ${slow.paidPerSecond} purchases/s; peak ${slow.peakConnections} connections`
      : 'not run',
    met: met(
      slow
        ? slow.secondsAfterLastConfirm !== null && slow.secondsAfterLastConfirm <= 15 && slow.peakConnections <= 40
        : undefined,
    ),
  });
  const outage = results.outage;
  rows.push({
    target: `Treasury outage (${outage?.outageSeconds ?? 90} s at 10/s): 0 failed, a few hundred calls at most, paid within 60 s of recovery, each level once`,
    measured: outage
      ? `${outage.failed} failed; ${outage.treasuryCallsDuringOutage} calls during the outage; drained ${outage.secondsToDrainAfterRecovery ?? 'never'} s after recovery; ${outage.levelsPaid} levels paid / ${outage.transfersAccepted} accepted`
      : 'not run',
    met: met(
      outage
        ? outage.failed === 0 &&
            outage.treasuryCallsDuringOutage <= 300 &&
            outage.secondsToDrainAfterRecovery !== null &&
            outage.secondsToDrainAfterRecovery <= 60 &&
            outage.levelsPaid === outage.transfersAccepted &&
            outage.invariants.doubleCredits === 0
        : undefined,
    ),
  });
  return rows;
}
