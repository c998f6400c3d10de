/**
 * `pnpm bench`: measures the product's claims on this machine and writes
 * bench/results/<date>.md and .json. Benchmarks report figures; they never fail on a number
 * (the exit code is non-zero only when a scenario could not run).
 *
 * Environment:
 *   BENCH_DATABASE_URL / TEST_DATABASE_URL   admin URL of the Postgres to use (default postgres://postgres@127.0.0.1:5432/postgres)
 *   BENCH_SCENARIOS=pgbench,confirm,decoupling,e2e,e2e-http,drain,profile,cpu-profile,slow-treasury,outage   a subset (default all)
 *   BENCH_QUICK=1                          a short smoke run (writes <date>-quick.*)
 *   BENCH_DRAIN_COUNT=n                    queued purchases for the drain (default 10000)
 *   BENCH_OUTPUT_DIR=dir                   where to write the report (default bench/results)
 *   BENCH_E2E_RATE=n, BENCH_DECOUPLING_RATE=n   purchases/s of the open-loop scenarios (default 100 and 50)
 *   BENCH_WORKER_CONCURRENCY=8,16,…        WORKER_CONCURRENCY values one worker also drains with (default 8,16; none for none)
 *   BENCH_DRAIN_PROCESSES=1,2,…            worker and no-op process counts of the drain (default 1,2,4 and 1,4)
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createPool } from '@referrals/core';
import { type Bench, openBench, serverFacts } from './harness.ts';
import { REPO_ROOT } from './processes.ts';
import { renderMarkdown } from './render-markdown.ts';
import type { BenchResults, Report } from './report.ts';
import { summarizeTargets } from './targets.ts';
import { runConfirmScenario } from './scenarios/confirm.ts';
import { runDecouplingScenario } from './scenarios/decoupling.ts';
import { runDrainScenario } from './scenarios/drain.ts';
import { runEndToEndScenario } from './scenarios/end-to-end.ts';
import { runPgbenchScenario } from './scenarios/pgbench.ts';
import { runProfileScenario } from './scenarios/profile.ts';
import { runOutageScenario, runSlowTreasuryScenario } from './scenarios/treasury.ts';
import { round } from './stats.ts';
import { HTTP_END_TO_END_RATE } from './rates.ts';
import { runCpuProfilesScenario } from './scenarios/cpu-profiles.ts';

export const SCENARIOS = [
  'pgbench',
  'confirm',
  'decoupling',
  'e2e',
  'e2e-http',
  'drain',
  'profile',
  'cpu-profile',
  'slow-treasury',
  'outage',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/**
 * 100k queued purchases (the issue's figure) take 1 worker 10+ minutes alone on two cores; 10k keeps the
 * whole run under 10 minutes on two cores; each drain still lasts long enough (tens of seconds) for a steady rate.
 */
export const DEFAULT_DRAIN_COUNT = 10_000;

export interface BenchOptions {
  adminUrl: string;
  scenarios: ScenarioName[];
  quick: boolean;
  drainCount: number;
  outputDir: string;
  endToEndRate?: number | undefined;
  decouplingRate?: number | undefined;
  workerConcurrencies?: number[] | undefined;
  drainProcesses?: number[] | undefined;
}

export function optionsFromEnv(env: Record<string, string | undefined> = process.env): BenchOptions {
  const requested = (env.BENCH_SCENARIOS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = requested.filter((s) => !(SCENARIOS as readonly string[]).includes(s));
  if (unknown.length)
    throw new Error(`BENCH_SCENARIOS: unknown ${unknown.join(', ')} (known: ${SCENARIOS.join(', ')})`);
  const drainCount = Number(env.BENCH_DRAIN_COUNT ?? DEFAULT_DRAIN_COUNT);
  if (!Number.isSafeInteger(drainCount) || drainCount < 1)
    throw new Error(`BENCH_DRAIN_COUNT must be a positive integer, got ${env.BENCH_DRAIN_COUNT}`);
  return {
    adminUrl: env.BENCH_DATABASE_URL || env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    scenarios: requested.length ? (requested as ScenarioName[]) : [...SCENARIOS],
    quick: env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true',
    drainCount,
    outputDir: env.BENCH_OUTPUT_DIR || join(REPO_ROOT, 'bench/results'),
    endToEndRate: positive(env, 'BENCH_E2E_RATE'),
    decouplingRate: positive(env, 'BENCH_DECOUPLING_RATE'),
    workerConcurrencies: positiveList(env, 'BENCH_WORKER_CONCURRENCY'),
    drainProcesses: positiveList(env, 'BENCH_DRAIN_PROCESSES'),
  };
}

function positiveList(env: Record<string, string | undefined>, name: string): number[] | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  if (raw === 'none') return [];
  const values = raw.split(',').map((s) => Number(s.trim()));
  if (values.some((v) => !Number.isSafeInteger(v) || v < 1))
    throw new Error(`${name} must be a comma-separated list of positive integers, got ${raw}`);
  return values;
}

function positive(env: Record<string, string | undefined>, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
  return value;
}

async function runScenario(bench: Bench, name: ScenarioName, results: BenchResults): Promise<void> {
  switch (name) {
    case 'pgbench':
      results.pgbench = await runPgbenchScenario(bench);
      return;
    case 'confirm':
      results.confirm = await runConfirmScenario(bench);
      return;
    case 'decoupling':
      results.decoupling = await runDecouplingScenario(bench);
      return;
    case 'e2e':
      results.endToEnd = await runEndToEndScenario(bench);
      // Half the rate as well: tells a capacity limit (latency falls away) from a fixed delay (it stays).
      if (!bench.quick)
        results.endToEndHalfRate = await runEndToEndScenario(bench, { rate: results.endToEnd.rate / 2 });
      return;
    case 'e2e-http':
      // The http gateway against an instant treasury, at the rate its target names.
      results.endToEndHttp = await runEndToEndScenario(bench, {
        gateway: 'http',
        rate: bench.quick ? 20 : HTTP_END_TO_END_RATE,
      });
      return;
    case 'drain':
      results.drain = await runDrainScenario(bench);
      return;
    case 'profile':
      results.profile = await runProfileScenario(bench);
      return;
    case 'cpu-profile':
      results.cpuProfiles = await runCpuProfilesScenario(bench);
      return;
    case 'slow-treasury':
      results.slowTreasury = await runSlowTreasuryScenario(bench);
      return;
    case 'outage':
      results.outage = await runOutageScenario(bench);
      return;
  }
}

export async function runBench(options: BenchOptions): Promise<{ report: Report; files: string[] }> {
  const started = new Date();
  const loadAtStart = round(loadavg()[0] ?? 0);
  const logDir = mkdtempSync(join(tmpdir(), 'referral-bench-'));
  const bench = await openBench({
    adminUrl: options.adminUrl,
    quick: options.quick,
    logDir,
    drainCount: options.drainCount,
    endToEndRate: options.endToEndRate,
    decouplingRate: options.decouplingRate,
    workerConcurrencies: options.workerConcurrencies,
    drainProcesses: options.drainProcesses,
  });
  bench.log(`scenarios ${options.scenarios.join(', ')}${options.quick ? ' (quick)' : ''}; process logs in ${logDir}`);

  const admin = createPool(options.adminUrl, { max: 1 });
  const postgres = await serverFacts(admin).finally(() => admin.end());

  const results: BenchResults = {};
  const errors: Record<string, string> = {};
  for (const name of options.scenarios) {
    const t0 = performance.now();
    try {
      await runScenario(bench, name, results);
    } catch (error) {
      errors[name] = error instanceof Error ? (error.stack ?? error.message) : String(error);
      bench.log(`${name} failed: ${errors[name]}`);
    }
    bench.log(`${name} done in ${round((performance.now() - t0) / 1000, 1)} s`);
  }

  const date = started.toISOString().slice(0, 10);
  const report: Report = {
    date,
    startedAt: started.toISOString(),
    durationSeconds: round((Date.now() - started.getTime()) / 1000, 1),
    quick: options.quick,
    machine: {
      cores: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGb: round(totalmem() / 2 ** 30, 1),
      node: process.version,
      postgres,
      loadAverage: { start: loadAtStart, end: round(loadavg()[0] ?? 0) },
    },
    settings: {
      scenarios: options.scenarios,
      drainCount: options.drainCount,
      ...(options.endToEndRate ? { endToEndRate: options.endToEndRate } : {}),
      ...(options.decouplingRate ? { decouplingRate: options.decouplingRate } : {}),
      ...(options.workerConcurrencies ? { workerConcurrencies: options.workerConcurrencies } : {}),
      ...(options.drainProcesses ? { drainProcesses: options.drainProcesses } : {}),
    },
    summary: summarizeTargets(results),
    results,
    errors,
  };
  mkdirSync(options.outputDir, { recursive: true });
  const base = join(options.outputDir, `${date}${options.quick ? '-quick' : ''}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(`${base}.md`, renderMarkdown(report));
  return { report, files: [`${base}.md`, `${base}.json`] };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const options = optionsFromEnv();
  const { report, files } = await runBench(options);
  process.stdout.write(
    `\n${report.summary.map((r) => `${r.met.padEnd(3)}  ${r.target}: ${r.measured}`).join('\n')}\n\nwrote ${files.join(', ')}\n`,
  );
  if (Object.keys(report.errors).length) process.exitCode = 1;
}
