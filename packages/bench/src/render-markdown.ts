/** The report as Markdown: the summary of targets, then one section of raw figures per scenario run. */
import type { Report } from './report.ts';
import { endToEndSection, drainSection, outageSection, slowTreasurySection } from './report-sections/payout-path.ts';
import { cpuProfileSection, roundTripSection } from './report-sections/profiles.ts';
import { confirmSection, decouplingSection, pgbenchSection } from './report-sections/request-path.ts';

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
  lines.push(
    ...pgbenchSection(results.pgbench),
    ...confirmSection(results.confirm),
    ...decouplingSection(results.decoupling),
    ...endToEndSection(results),
    ...drainSection(results.drain),
    ...slowTreasurySection(results.slowTreasury?.runs ?? []),
    ...outageSection(results.outage),
    ...cpuProfileSection(results.cpuProfiles),
    ...roundTripSection(results.profile),
  );
  return `${lines.join('\n')}\n`;
}
