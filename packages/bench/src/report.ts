/**
 * The benchmark report: a summary table with each target from the benchmark issue and whether this
 * run meets it, then every scenario's raw figures. Written as Markdown for people and JSON for tools.
 */
import type { ServerFacts } from './harness.ts';
import type { ConfirmResult, ThroughputRun } from './scenarios/confirm.ts';
import type { DecouplingResult, DecouplingRun } from './scenarios/decoupling.ts';
import type { DrainResult, DrainRun } from './scenarios/drain.ts';
import type { EndToEndResult } from './scenarios/end-to-end.ts';
import type { CpuProfilesResult } from './scenarios/cpu-profiles.ts';
import type { CpuProfileSummary } from './cpu-profile.ts';
import type { PgbenchResult } from './scenarios/pgbench.ts';
import type { ProfileResult } from './scenarios/profile.ts';
import type { OutageResult, SlowTreasuryResult } from './scenarios/treasury.ts';
import type { LatencySummary } from './stats.ts';
import { ratio, round } from './stats.ts';

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGb: number;
  node: string;
  postgres: ServerFacts;
  /** 1-minute load average before the run (other work) and at its end (which includes this run). */
  loadAverage: { start: number; end: number };
}

export interface BenchResults {
  pgbench?: PgbenchResult | { skipped: string };
  confirm?: ConfirmResult;
  decoupling?: DecouplingResult;
  endToEnd?: EndToEndResult;
  /** The same at half the rate, for diagnosis; the targets are judged on endToEnd. */
  endToEndHalfRate?: EndToEndResult;
  /** The http gateway against an instant treasury (targets p50 ≤ 25 ms, p99 ≤ 150 ms at 50/s). */
  endToEndHttp?: EndToEndResult;
  cpuProfiles?: CpuProfilesResult;
  drain?: DrainResult;
  profile?: ProfileResult;
  slowTreasury?: SlowTreasuryResult;
  outage?: OutageResult;
}

export interface Report {
  date: string;
  startedAt: string;
  durationSeconds: number;
  quick: boolean;
  machine: Machine;
  settings: Record<string, unknown>;
  summary: SummaryRow[];
  results: BenchResults;
  errors: Record<string, string>;
}

export interface SummaryRow {
  target: string;
  measured: string;
  met: 'yes' | 'no' | 'n/a';
}

const met = (ok: boolean | undefined): SummaryRow['met'] => (ok === undefined ? 'n/a' : ok ? 'yes' : 'no');
const ms = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : `${round(v, 1)} ms`);
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

const latencyHeader = '| p50 | p99 | p99.9 | max | samples |';
const latencyCells = (l: LatencySummary | undefined) =>
  l ? `| ${ms(l.p50)} | ${ms(l.p99)} | ${ms(l.p999)} | ${ms(l.max)} | ${l.count} |` : '| – | – | – | – | 0 |';
const errors = (e: Record<string, number>) =>
  Object.keys(e).length
    ? Object.entries(e)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')
    : 'none';

function throughputTable(title: string, run: ThroughputRun): string[] {
  return [
    `${title}: **${run.confirmsPerSecond} confirms/s**, ${run.requestsPerSecond} HTTP requests/s, ${run.connections} connections, ${run.seconds} s measured; errors: ${errors(run.errors)}`,
    '',
    `| request ${latencyHeader}`,
    '|---|---|---|---|---|---|',
    ...(run.create ? [`| create ${latencyCells(run.create)}`] : []),
    `| confirm ${latencyCells(run.confirm)}`,
    '',
    ...(run.cpuMsPerConfirm
      ? [
          `CPU ms per confirmed purchase: ${Object.entries(run.cpuMsPerConfirm)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}.`,
          '',
        ]
      : []),
  ];
}

function drainTable(runs: DrainRun[], what: string, defaultConcurrency?: number): string[] {
  return [
    `| ${what} processes | WORKER_CONCURRENCY | count | time to empty | overall /s | steady /s (10–90 %) | transfers/s | peak RSS per process (MB) | peak connections | CPU ms per item: processes / Postgres |`,
    '|---|---|---|---|---|---|---|---|---|---|',
    ...runs.map(
      (r) =>
        `| ${r.processes} | ${r.workerConcurrency ?? (defaultConcurrency === undefined ? '–' : `${defaultConcurrency} (default)`)} | ${r.count} | ${r.timeToEmptySeconds} s${r.timedOut ? ' (timed out)' : ''} | ${r.overallPerSecond} | ${r.steadyPerSecond} | ${r.steadyTransfersPerSecond ?? '–'} | ${r.peakRssMbPerProcess.map((m) => m ?? '?').join(', ')} | ${r.peakConnections} | ${r.cpuMsPerItem.processes} / ${r.cpuMsPerItem.postgres} |`,
    ),
    '',
  ];
}

export function renderMarkdown(report: Report): string {
  const { results, machine } = report;
  const lines: string[] = [
    `# Benchmark results ${report.date}${report.quick ? ' (quick smoke run: figures are not meaningful)' : ''}`,
    '',
    `Machine: ${machine.cores} cores (${machine.cpuModel}), ${machine.memoryGb} GB RAM, Node ${machine.node}, ${machine.postgres.postgresVersion.split(' on ')[0]}, ` +
      `synchronous_commit=${machine.postgres.synchronousCommit}, shared_buffers=${machine.postgres.sharedBuffers}, max_connections=${machine.postgres.maxConnections}. ` +
      `Postgres, the API, the workers and the load client share those cores. 1-minute load average ${machine.loadAverage.start} before the run (other work on the machine) and ${machine.loadAverage.end} at its end (this run included).`,
    '',
    `Run with \`pnpm bench\` (${report.durationSeconds} s). Settings: ${Object.entries(report.settings)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(', ')}.`,
    '',
    '## Summary',
    '',
    '| target | measured | met |',
    '|---|---|---|',
    ...report.summary.map((r) => `| ${r.target} | ${r.measured} | ${r.met} |`),
    '',
  ];
  if (Object.keys(report.errors).length) {
    lines.push(
      '## Scenarios that did not complete',
      '',
      ...Object.entries(report.errors).map(([k, v]) => `* ${k}: \`${v.split('\n')[0]}\``),
      '',
    );
  }

  const pgb = results.pgbench;
  if (pgb) {
    lines.push('## 1. Physical limit (pgbench)', '');
    if ('skipped' in pgb) lines.push(`Skipped: ${pgb.skipped}`, '');
    else {
      lines.push(
        `${pgb.pgbench}; confirm's transaction replayed on the real schema (purchase lock + update, 3 ledger rows in one statement under the balance trigger, outbox row, event row), \`-M extended\`, ${pgb.main.clients} clients.`,
        '',
        '| synchronous_commit | seconds | TPS | latency avg | transactions | failed | Postgres CPU ms per transaction |',
        '|---|---|---|---|---|---|---|',
        ...[pgb.main, pgb.asyncCommit, pgb.oneStatement]
          .filter((r) => r !== undefined)
          .map(
            (r) =>
              `| ${r.synchronousCommit} | ${r.seconds} | **${r.tps}** | ${ms(r.latencyAvgMs)} | ${r.transactions} | ${r.failed} | ${r.postgresCpuMsPerTransaction} |`,
          ),
        '',
        '<details><summary>pgbench script</summary>',
        '',
        '```sql',
        pgb.script,
        '```',
        '',
        '</details>',
        '',
        ...(pgb.oneStatement
          ? [
              'The *one statement* row is not the product: the same writes as one statement of data-modifying CTEs (one round trip, no BEGIN/COMMIT), measured to size that change.',
              '',
              '<details><summary>one-statement script</summary>',
              '',
              '```sql',
              pgb.oneStatementScript,
              '```',
              '',
              '</details>',
              '',
            ]
          : []),
      );
    }
  }

  const c = results.confirm;
  if (c) {
    lines.push(
      '## 2. Confirm throughput and latency',
      '',
      `API process (pool of 10) ${c.withWorker ? 'with a worker process paying behind it (ledger gateway)' : 'alone'}; closed loop from a separate load-client process.` +
        ` API peak RSS ${c.apiPeakRssKb ? round(c.apiPeakRssKb / 1024, 1) : '?'} MB.`,
      '',
      ...throughputTable('Create + confirm pairs', c.createAndConfirm),
      ...(c.confirmOnly
        ? throughputTable('Confirm only (pre-created pending purchases, the shape pgbench replays)', c.confirmOnly)
        : []),
      `Invariants after the run: ${JSON.stringify(c.invariants)}`,
      '',
    );
  }

  const d = results.decoupling;
  if (d) {
    lines.push(
      '## 3. Decoupling: confirm latency vs. treasury behaviour',
      '',
      `Open loop, ${d.rate} purchases/s (create then confirm) for ${d.seconds} s after a warm-up, http payout gateway against a local treasury. ` +
        "*outbox* = this product (API + worker); *synchronous* = bench-only baseline that pays inside the confirm request. Ratios are to the same mode's 0 ms case.",
      '',
      '| mode | treasury | confirm p50 | p99 | p99.9 | max | p50 ratio | p99 ratio | confirmed | errors | treasury paid/failed | payout status at end |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...d.runs.map(
        (r) =>
          `| ${r.mode} | ${r.treasury} | ${ms(r.confirm.p50)} | ${ms(r.confirm.p99)} | ${ms(r.confirm.p999)} | ${ms(r.confirm.max)} | ${r.p50Ratio}× | ${r.p99Ratio}× | ${r.confirmed} | ${errors(r.errors)} | ${r.treasuryCalls.paid}/${r.treasuryCalls.failed} | ${Object.entries(
            r.payoutStatus,
          )
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')} |`,
      ),
      '',
    );
  }

  const endToEndRuns = [results.endToEnd, results.endToEndHalfRate, results.endToEndHttp].filter(
    (r) => r !== undefined,
  );
  if (endToEndRuns.length) lines.push('## 4. End-to-end latency (confirm commit → completed)', '');
  for (const e of endToEndRuns) {
    lines.push(
      ...(e === results.endToEndHalfRate ? [`### At ${e.rate}/s (diagnosis: half the target rate)`, ''] : []),
      ...(e === results.endToEndHttp
        ? [`### Through the http gateway at ${e.rate}/s (a local treasury that answers at once)`, '']
        : []),
      `Open loop, ${e.rate} purchases/s for ${e.seconds} s after a drained warm-up; API + one worker, ${e.gateway === 'http' ? 'http' : 'ledger'} gateway. ${e.completed}/${e.purchases} completed` +
        `${e.notCompleted ? ` (**${e.notCompleted} not completed** when the wait ended)` : ''}; load-client late starts: ${e.lateStarts}; errors: ${errors(e.errors)}.`,
      '',
      `| hop ${latencyHeader}`,
      '|---|---|---|---|---|---|',
      `| **confirmed → completed** ${latencyCells(e.total)}`,
      `| confirmed_at → outbox.published_at ${latencyCells(e.hops.toPublished)}`,
      `| published_at → pgboss.job.started_on ${latencyCells(e.hops.toJobStarted)}`,
      `| started_on → referral_payout_completed_at ${latencyCells(e.hops.toCompleted)}`,
      `| (confirmed_at → pgboss.job.completed_on, an upper bound on commit → paid) ${latencyCells(e.toJobCompleted)}`,
      `| (confirm HTTP request) ${latencyCells(e.confirmHttp)}`,
      '',
      'The timestamps are `now()` of the transaction that wrote them (its start), so each hop also includes the end of the previous transaction and its commit.',
      '',
      `Invariants after the run: ${JSON.stringify(e.invariants)}`,
      '',
    );
  }

  const dr = results.drain;
  if (dr) {
    lines.push(
      '## 5. Drain',
      '',
      `${dr.count} purchases inserted as confirmed + queued with their outbox rows, then worker processes (default WORKER_CONCURRENCY=${dr.workerConcurrency} unless the table says otherwise, ledger gateway) started; ` +
        'time to empty counts from spawning the processes (start-up included).',
      '',
      ...drainTable(dr.drains, 'worker', dr.workerConcurrency),
      `Reference in the same run: plain pg-boss (8 slots, one job per fetch, LISTEN/NOTIFY, 0.5 s polling) with a no-op handler, ${dr.count} jobs inserted up front:`,
      '',
      ...drainTable(dr.noop, 'no-op'),
      ...dr.drains.map(
        (r) =>
          `* ${r.processes} worker(s)${r.workerConcurrency === undefined ? '' : ` at WORKER_CONCURRENCY=${r.workerConcurrency}`}: final status ${JSON.stringify(r.finalStatus)}; invariants ${JSON.stringify(r.invariants)}`,
      ),
      '',
    );
  }
  const slowRuns = results.slowTreasury?.runs ?? [];
  if (slowRuns.length) {
    lines.push(
      '## 6. Slow treasury',
      '',
      'Open loop through the http gateway; API + one worker at default settings; the treasury answers every transfer after the delay. ' +
        'Connections: backends of the API and the worker on the database, sampled every 100 ms.',
      '',
      '| treasury | purchases/s offered | paid | failed | last paid after last confirm | purchases/s paid | peak connections | peak transfers in flight | treasury requests |',
      '|---|---|---|---|---|---|---|---|---|',
      ...slowRuns.map(
        (r) =>
          `| ${r.delayMs} ms | ${r.rate} | ${r.completed}/${r.purchases} | ${r.failed} | ${r.secondsAfterLastConfirm ?? 'not all paid'} s | ${r.paidPerSecond} | ${r.peakConnections} | ${r.peakTransfersInFlight} | ${r.treasuryRequests} |`,
      ),
      '',
      ...slowRuns.map((r) => `* ${r.delayMs} ms: invariants ${JSON.stringify(r.invariants)}`),
      '',
    );
  }
  const o = results.outage;
  if (o) {
    lines.push(
      '## 7. Treasury outage',
      '',
      `${o.rate} purchases/s through the http gateway; the treasury answers 500 to every transfer for ${o.outageSeconds} s in the middle of the run; API + one worker at default settings.`,
      '',
      '| purchases | completed | failed | treasury calls during the outage | drained after recovery | levels paid | transfers accepted |',
      '|---|---|---|---|---|---|---|',
      `| ${o.purchases} | ${o.completed} | ${o.failed} | ${o.treasuryCallsDuringOutage} | ${o.secondsToDrainAfterRecovery ?? 'not drained'} s | ${o.levelsPaid} | ${o.transfersAccepted} |`,
      '',
      `Invariants after the run: ${JSON.stringify(o.invariants)}`,
      '',
    );
  }
  lines.push(...cpuProfileSection(results.cpuProfiles));
  const p = results.profile;
  if (p) {
    lines.push(
      '## Profile: round trips to Postgres',
      '',
      'Counted by a proxy in front of each process (one per Sync or simple Query). Requests one at a time; the worker and the no-op reference over a drained backlog, pg-boss and relay traffic included.',
      '',
      '| operation | round trips |',
      '|---|---|',
      `| create purchase (API, ${p.requests} requests) | ${p.perCreate} |`,
      `| confirm purchase (API, ${p.requests} requests) | ${p.perConfirm} |`,
      `| payout per purchase (worker, backlog of ${p.backlog}, ledger gateway) | ${p.perPayout} (${p.commitsPerPayout} commits) |`,
      `| no-op pg-boss job (backlog of ${p.backlog}) | ${p.perNoopJob} |`,
      '',
    );
  }
  return `${lines.join('\n')}\n`;
}

function cpuProfileSection(c: CpuProfilesResult | undefined): string[] {
  if (!c) return [];
  const runs: [string, CpuProfileSummary | undefined][] = [
    ['API under create + confirm, then confirm only (32 connections)', c.apiConfirm],
    [`One worker draining ${c.drainCount} queued purchases (ledger gateway, default settings)`, c.workerDrain],
    ['One worker paying through the http gateway at a steady rate (instant treasury)', c.workerHttp],
  ];
  const lines = [
    '## Profile: where the CPU goes',
    '',
    `\`node --cpu-prof\` (500 µs sampling) on shorter runs of the scenarios above, so the profiler's cost stays out of their figures; self time per function, summed by who owns the code. Start-up (loading and type-stripping modules) is a fixed cost and left out of the shares. Profiles: \`${c.dir}\`.`,
    '',
  ];
  for (const [title, summary] of runs) {
    if (!summary) {
      lines.push(`### ${title}`, '', 'No profile was written.', '');
      continue;
    }
    lines.push(
      `### ${title}`,
      '',
      `${summary.busyMs} ms on CPU after start-up (start-up ${summary.startupMs} ms).`,
      '',
      '| share of CPU | % |',
      '|---|---|',
      ...Object.entries(summary.shares).map(([k, v]) => `| ${k} | ${v} |`),
      '',
      '| top function (self time) | owner | % |',
      '|---|---|---|',
      ...summary.top.map((t) => `| \`${t.frame.replaceAll('|', '\\|')}\` | ${t.category} | ${t.percent} |`),
      '',
    );
  }
  return lines;
}
