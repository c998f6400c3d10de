/**
 * CPU profiles (`node --cpu-prof`): the API under the confirm scenario's load, one worker draining
 * a backlog with the ledger gateway, and one worker paying through the http gateway at a steady
 * rate. Shorter runs of those scenarios, kept apart from the measured ones so the profiler's own
 * cost never reaches the figures the targets are judged on.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type CpuProfileSummary, cpuProfileArgs, summarizeProfileDir } from '../cpu-profile.ts';
import type { Bench } from '../harness.ts';
import { HTTP_END_TO_END_RATE } from '../rates.ts';
import { runConfirmScenario } from './confirm.ts';
import { drainWith } from './drain.ts';
import { runEndToEndScenario } from './end-to-end.ts';

export interface CpuProfilesResult {
  /** Where the `.cpuprofile` files are (open them in Chrome DevTools or speedscope). */
  dir: string;
  /** The API during create + confirm and then confirm only (32 connections, closed loop). */
  apiConfirm: CpuProfileSummary | undefined;
  /** One worker with default settings draining queued purchases (ledger gateway). */
  workerDrain: CpuProfileSummary | undefined;
  drainCount: number;
  /** One worker paying through the http gateway (instant treasury) at a steady rate. */
  workerHttp: CpuProfileSummary | undefined;
}

export async function runCpuProfilesScenario(bench: Bench): Promise<CpuProfilesResult> {
  const dir = join(bench.logDir, 'cpu-profiles');
  const at = (name: string) => {
    const path = join(dir, name);
    mkdirSync(path, { recursive: true });
    return path;
  };
  bench.log(`cpu profiles: writing to ${dir}`);
  await runConfirmScenario(bench, {
    seconds: bench.quick ? 2 : 10,
    confirmOnlySeconds: bench.quick ? 0 : 6,
    apiNodeArgs: cpuProfileArgs(at('api-confirm')),
  });
  const drainCount = bench.quick ? 300 : 5000;
  await drainWith(bench, 1, drainCount, 240_000, undefined, cpuProfileArgs(at('worker-drain')));
  await runEndToEndScenario(bench, {
    gateway: 'http',
    rate: bench.quick ? 20 : HTTP_END_TO_END_RATE,
    seconds: bench.quick ? 2 : 15,
    workerNodeArgs: cpuProfileArgs(at('worker-http')),
  });
  return {
    dir,
    apiConfirm: summarizeProfileDir(join(dir, 'api-confirm')),
    workerDrain: summarizeProfileDir(join(dir, 'worker-drain')),
    drainCount,
    workerHttp: summarizeProfileDir(join(dir, 'worker-http')),
  };
}
