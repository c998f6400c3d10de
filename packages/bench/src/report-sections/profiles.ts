/** The report's profiles: where the CPU goes, and round trips to Postgres per operation. */
import type { CpuProfileSummary } from '../cpu-profile.ts';
import type { CpuProfilesResult } from '../scenarios/cpu-profiles.ts';
import type { ProfileResult } from '../scenarios/profile.ts';

export function cpuProfileSection(c: CpuProfilesResult | undefined): string[] {
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

export function roundTripSection(p: ProfileResult | undefined): string[] {
  if (!p) return [];
  return [
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
  ];
}
