/** The report's sections on the request path: the physical limit, confirm throughput, decoupling. */
import type { BenchResults } from '../report.ts';
import { errors, latencyCells, latencyHeader, ms } from '../report-format.ts';
import type { ThroughputRun } from '../scenarios/confirm.ts';
import type { DecouplingResult } from '../scenarios/decoupling.ts';
import { round } from '../stats.ts';

export function pgbenchSection(pgb: BenchResults['pgbench']): string[] {
  if (!pgb) return [];
  if ('skipped' in pgb) return ['## 1. Physical limit (pgbench)', '', `Skipped: ${pgb.skipped}`, ''];
  return [
    '## 1. Physical limit (pgbench)',
    '',
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
  ];
}

export function confirmSection(c: BenchResults['confirm']): string[] {
  if (!c) return [];
  return [
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
  ];
}

export function decouplingSection(d: DecouplingResult | undefined): string[] {
  if (!d) return [];
  return [
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
  ];
}

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
