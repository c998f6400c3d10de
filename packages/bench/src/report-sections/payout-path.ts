/** The report's sections on the payout path: end-to-end latency, drain, a slow treasury, an outage. */
import type { BenchResults } from '../report.ts';
import { errors, latencyCells, latencyHeader } from '../report-format.ts';
import type { DrainResult, DrainRun } from '../scenarios/drain.ts';
import type { OutageResult, SlowTreasuryResult } from '../scenarios/treasury.ts';

export function endToEndSection(results: BenchResults): string[] {
  const endToEndRuns = [results.endToEnd, results.endToEndHalfRate, results.endToEndHttp].filter(
    (r) => r !== undefined,
  );
  if (!endToEndRuns.length) return [];
  return [
    '## 4. End-to-end latency (confirm commit → completed)',
    '',
    ...endToEndRuns.flatMap((e) => [
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
    ]),
  ];
}

export function drainSection(dr: DrainResult | undefined): string[] {
  if (!dr) return [];
  return [
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
  ];
}

export function slowTreasurySection(slowRuns: SlowTreasuryResult['runs']): string[] {
  if (!slowRuns.length) return [];
  return [
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
  ];
}

export function outageSection(o: OutageResult | undefined): string[] {
  if (!o) return [];
  return [
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
