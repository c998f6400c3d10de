/**
 * The benchmark report: a summary table with each target from the benchmark issue and whether this
 * run meets it (`targets.ts`), then every scenario's raw figures (`render-markdown.ts`). Written as
 * Markdown for people and JSON for tools; this file is its shape.
 */
import type { ServerFacts } from './harness.ts';
import type { ConfirmResult } from './scenarios/confirm.ts';
import type { CpuProfilesResult } from './scenarios/cpu-profiles.ts';
import type { DecouplingResult } from './scenarios/decoupling.ts';
import type { DrainResult } from './scenarios/drain.ts';
import type { EndToEndResult } from './scenarios/end-to-end.ts';
import type { PgbenchResult } from './scenarios/pgbench.ts';
import type { ProfileResult } from './scenarios/profile.ts';
import type { OutageResult, SlowTreasuryResult } from './scenarios/treasury.ts';

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
