/**
 * Scenario 2, confirm throughput and latency: create + confirm pairs at full speed (closed loop,
 * 32 connections) against the API process, with a worker process paying behind it as deployed.
 * A second, shorter run confirms pre-created purchases only, the shape pgbench replays.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDatabase } from '@referrals/core';
import { readInvariants, type InvariantReport } from '@referrals/testing';
import { type Bench, PLATFORM_FEE_BPS, runLoadClient, startApi, startWorkerProcess, stopAll } from '../harness.ts';
import { cpuDelta, cpuSnapshot } from '../cpu.ts';
import type { LoadPlan, LoadResult } from '../load-client.ts';
import type { Service } from '../processes.ts';
import { seedMarketplace, seedPending } from '../seed.ts';
import { type LatencySummary, round, summarize } from '../stats.ts';

export interface ThroughputRun {
  connections: number;
  seconds: number;
  confirmsPerSecond: number;
  requestsPerSecond: number;
  create: LatencySummary | undefined;
  confirm: LatencySummary;
  errors: Record<string, number>;
  /** CPU ms per confirmed purchase (create + confirm pair, or confirm alone), by process, over the whole load run. */
  cpuMsPerConfirm: Record<string, number> | undefined;
}

export interface ConfirmResult {
  createAndConfirm: ThroughputRun;
  confirmOnly: ThroughputRun | undefined;
  withWorker: boolean;
  apiPeakRssKb: number | undefined;
  invariants: InvariantReport;
}

export function throughput(
  load: LoadResult,
  connections: number,
  cpu?: { api: number; worker: number | undefined; postgres: number },
): ThroughputRun {
  const seconds = load.elapsedMs / 1000;
  const per = (ms: number) => round(ms / Math.max(1, load.confirmedTotal), 3);
  return {
    connections,
    seconds: round(seconds, 1),
    confirmsPerSecond: round(load.confirmed / seconds, 1),
    requestsPerSecond: round(load.requests / seconds, 1),
    create: load.createMs.length ? summarize(load.createMs) : undefined,
    confirm: summarize(load.confirmMs),
    errors: load.errors,
    cpuMsPerConfirm: cpu
      ? {
          api: per(cpu.api),
          ...(cpu.worker === undefined ? {} : { worker: per(cpu.worker) }),
          postgres: per(cpu.postgres),
          loadClient: per(load.cpuMs),
          total: per(cpu.api + (cpu.worker ?? 0) + cpu.postgres + load.cpuMs),
        }
      : undefined,
  };
}

/** Runs the load client and accounts the CPU the API, the worker and Postgres spent meanwhile. */
async function measured(bench: Bench, plan: LoadPlan, api: Service, worker: Service | undefined) {
  const pids = [api.pid, ...(worker ? [worker.pid] : [])];
  const before = cpuSnapshot(pids);
  const load = await runLoadClient(bench, plan);
  const delta = cpuDelta(before, cpuSnapshot(pids));
  return {
    load,
    cpu: {
      api: delta.byPid.get(api.pid) ?? 0,
      worker: worker ? (delta.byPid.get(worker.pid) ?? 0) : undefined,
      postgres: delta.postgresMs,
    },
  };
}

export interface ConfirmScenarioOptions {
  withWorker?: boolean;
  seconds?: number;
  confirmOnlySeconds?: number;
  /** Node options of the API process (the CPU profile run). */
  apiNodeArgs?: string[];
}

export async function runConfirmScenario(bench: Bench, options: ConfirmScenarioOptions = {}): Promise<ConfirmResult> {
  const withWorker = options.withWorker ?? true;
  const seconds = options.seconds ?? (bench.quick ? 3 : 20);
  const confirmOnlySeconds = options.confirmOnlySeconds ?? (bench.quick ? 0 : 10);
  const connections = 32;
  const db = await bench.database(options.apiNodeArgs ? 'confirmprofile' : 'confirm');
  const services: Service[] = [];
  try {
    const market = await seedMarketplace(db.pool);
    const api = await startApi(bench, db.url, {}, options.apiNodeArgs ? 'api-profiled' : 'api', options.apiNodeArgs);
    services.push(api);
    const worker = withWorker ? await startWorkerProcess(bench, db.url) : undefined;
    if (worker) services.push(worker);

    bench.log(`confirm: create + confirm, ${connections} connections, ${seconds} s`);
    const pairs = await measured(
      bench,
      {
        baseUrl: api.baseUrl,
        mode: 'closed',
        connections,
        durationMs: seconds * 1000,
        warmupMs: bench.quick ? 500 : 2000,
        buyerIds: market.buyerIds,
        contentIds: market.contentIds,
      },
      api,
      worker,
    );

    let confirmOnly: ThroughputRun | undefined;
    if (confirmOnlySeconds > 0) {
      const pending = await seedPending(
        db.pool,
        Math.ceil(confirmOnlySeconds * 2.5 * Math.max(200, pairs.load.confirmed / (pairs.load.elapsedMs / 1000))),
        PLATFORM_FEE_BPS,
      );
      const file = join(bench.logDir, 'pending-purchases.json');
      writeFileSync(file, JSON.stringify(pending));
      bench.log(`confirm: confirm only, ${connections} connections, ${confirmOnlySeconds} s`);
      const only = await measured(
        bench,
        {
          baseUrl: api.baseUrl,
          mode: 'closed',
          connections,
          durationMs: confirmOnlySeconds * 1000,
          warmupMs: 1000,
          buyerIds: [],
          contentIds: [],
          pendingIdsFile: file,
        },
        api,
        worker,
      );
      confirmOnly = throughput(only.load, connections, only.cpu);
    }
    const apiPeakRssKb = api.peakRssKb();
    await stopAll(services);
    const kysely = createDatabase(db.url, { max: 2 });
    const invariants = await readInvariants(kysely).finally(() => kysely.destroy());
    return {
      createAndConfirm: throughput(pairs.load, connections, pairs.cpu),
      confirmOnly,
      withWorker,
      apiPeakRssKb,
      invariants,
    };
  } finally {
    await stopAll(services);
    await db.drop();
  }
}
