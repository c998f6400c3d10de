/**
 * Scenario 5, drain: N confirmed purchases already queued (inserted by SQL with their outbox rows),
 * then 1, 2 and 4 worker processes empty the backlog: payouts per second, time to empty, peak RSS
 * per worker. In the same run, plain pg-boss (one job per fetch) with a no-op handler moves N jobs
 * through the same number of processes: the reference the drain rate is judged against.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { ConfigSchema, createDatabase } from '@referrals/core';

/** The worker's WORKER_CONCURRENCY when unset. */
const DEFAULT_WORKER_CONCURRENCY: number = ConfigSchema.properties.WORKER_CONCURRENCY.default;
import { readInvariants, type InvariantReport } from '@referrals/testing';
import { type Bench, PLATFORM_FEE_BPS, productEnv, startWorkerProcess, stopAll } from '../harness.ts';
import { freePort, NOOP_BOSS_ENTRY, runToCompletion, type Service, startService, waitForHttp } from '../processes.ts';
import { seedMarketplace, seedQueued } from '../seed.ts';
import { round } from '../stats.ts';
import { cpuDelta, type CpuSnapshot, cpuSnapshot, processCpuMs } from '../cpu.ts';

export interface DrainRun {
  processes: number;
  /** WORKER_CONCURRENCY of each worker; undefined for the default (and for the no-op reference). */
  workerConcurrency: number | undefined;
  count: number;
  /** Processes started → backlog empty, s. */
  timeToEmptySeconds: number;
  /** count / timeToEmpty. */
  overallPerSecond: number;
  /** Between 10 % and 90 % done: the rate once every process is up. */
  steadyPerSecond: number;
  /** Referral transfers per second at the steady rate (a purchase pays up to two levels). */
  steadyTransfersPerSecond: number | undefined;
  peakRssMbPerProcess: (number | undefined)[];
  /** Most connections to the database seen while draining (all processes together). */
  peakConnections: number;
  /** CPU ms per purchase (or job): the processes over their whole life, Postgres over the drain. */
  cpuMsPerItem: { processes: number; postgres: number };
  /** Purchases left in each payout status (all `completed` when the drain worked). */
  finalStatus: Record<string, number> | undefined;
  invariants: InvariantReport | undefined;
  timedOut: boolean;
}

export interface DrainResult {
  count: number;
  workerConcurrency: number;
  drains: DrainRun[];
  noop: DrainRun[];
}

interface Progress {
  at: number;
  done: number;
}

/** Samples `done()` until it reaches `count`; returns the time to empty and the steady rate. */
async function follow(pool: pg.Pool, count: number, startedAt: number, done: () => Promise<number>, timeoutMs: number) {
  const samples: Progress[] = [];
  const deadline = startedAt + timeoutMs;
  let peakConnections = 0;
  for (;;) {
    const value = await done();
    const { rows } = await pool.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where datname = current_database()`,
    );
    peakConnections = Math.max(peakConnections, rows[0]!.n);
    samples.push({ at: performance.now(), done: value });
    if (value >= count || performance.now() > deadline) break;
    await sleep(200);
  }
  const last = samples[samples.length - 1]!;
  const at = (fraction: number) => samples.find((s) => s.done >= count * fraction);
  const from = at(0.1);
  const to = at(0.9);
  const steady = from && to && to.at > from.at ? (to.done - from.done) / ((to.at - from.at) / 1000) : Number.NaN;
  const seconds = (last.at - startedAt) / 1000;
  return {
    timeToEmptySeconds: round(seconds, 2),
    overallPerSecond: round(last.done / seconds, 1),
    steadyPerSecond: round(steady, 1),
    timedOut: last.done < count,
    peakConnections,
  };
}

export async function drainWith(
  bench: Bench,
  processes: number,
  count: number,
  timeoutMs: number,
  workerConcurrency?: number,
  nodeArgs: string[] = [],
): Promise<DrainRun> {
  const db = await bench.database(`drain${processes}c${workerConcurrency ?? 'default'}${nodeArgs.length ? 'p' : ''}`);
  const env: Record<string, string> =
    workerConcurrency === undefined ? {} : { WORKER_CONCURRENCY: String(workerConcurrency) };
  const services: Service[] = [];
  try {
    await seedMarketplace(db.pool);
    await seedQueued(db.pool, count, PLATFORM_FEE_BPS);
    bench.log(
      `drain: ${count} queued purchases, ${processes} worker process(es), WORKER_CONCURRENCY ${workerConcurrency ?? 'default'}`,
    );
    const startedAt = performance.now();
    const cpuBefore = cpuSnapshot([]);
    services.push(
      ...(await Promise.all(
        Array.from({ length: processes }, (_, i) =>
          startWorkerProcess(
            bench,
            db.url,
            env,
            `drain-worker-${processes}-${workerConcurrency ?? 'd'}-${i + 1}`,
            nodeArgs,
          ),
        ),
      )),
    );
    const result = await follow(db.pool, count, startedAt, () => settledCount(db.pool), timeoutMs);
    const cpuMsPerItem = cpuPerItem(services, cpuBefore, count);
    const peaks = services.map((s) => s.peakRssKb());
    const stopped = await Promise.all(services.map((s) => s.stop()));
    const { rows } = await db.pool.query<{ status: string; n: number }>(
      `select referral_payout_status as status, count(*)::int as n from purchases group by 1`,
    );
    const transfers = await db.pool.query<{ n: number }>(
      `select count(*)::int as n from referral_payouts where status = 'paid'`,
    );
    const kysely = createDatabase(db.url, { max: 2 });
    const invariants = await readInvariants(kysely).finally(() => kysely.destroy());
    const perPurchase = transfers.rows[0]!.n / Math.max(1, count);
    return {
      processes,
      workerConcurrency,
      count,
      ...result,
      cpuMsPerItem,
      steadyTransfersPerSecond: round(result.steadyPerSecond * perPurchase, 1),
      peakRssMbPerProcess: stopped.map((s, i) => mb(s.peakRssKb ?? peaks[i])),
      finalStatus: Object.fromEntries(rows.map((r) => [r.status, r.n])),
      invariants,
    };
  } finally {
    await stopAll(services);
    await db.drop();
  }
}

async function settledCount(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `select count(*)::int as n from purchases where status = 'confirmed' and referral_payout_status <> 'queued'`,
  );
  return rows[0]!.n;
}

async function noopWith(bench: Bench, processes: number, count: number, timeoutMs: number): Promise<DrainRun> {
  const db = await bench.database(`noop${processes}`);
  const services: Service[] = [];
  try {
    await runToCompletion(
      'noop-insert',
      NOOP_BOSS_ENTRY,
      [],
      { DATABASE_URL: db.url, NOOP_ROLE: 'insert', NOOP_JOBS: String(count) },
      bench.logDir,
    );
    bench.log(`drain reference: ${count} no-op pg-boss jobs, ${processes} process(es)`);
    const startedAt = performance.now();
    const cpuBefore = cpuSnapshot([]);
    services.push(
      ...(await Promise.all(
        Array.from({ length: processes }, async (_, i) => {
          const port = await freePort();
          const service = startService(
            `noop-worker-${processes}-${i + 1}`,
            NOOP_BOSS_ENTRY,
            { ...productEnv(db.url), NOOP_ROLE: 'work', PORT: String(port) },
            bench.logDir,
          );
          await waitForHttp(service, `http://127.0.0.1:${port}/`, 60_000);
          return service;
        }),
      )),
    );
    const result = await follow(
      db.pool,
      count,
      startedAt,
      async () => {
        const { rows } = await db.pool.query<{ n: number }>(
          `select count(*)::int as n from pgboss.job where name = 'bench-noop' and state = 'completed'`,
        );
        return rows[0]!.n;
      },
      timeoutMs,
    );
    const cpuMsPerItem = cpuPerItem(services, cpuBefore, count);
    const stopped = await Promise.all(services.map((s) => s.stop()));
    return {
      processes,
      workerConcurrency: undefined,
      count,
      ...result,
      cpuMsPerItem,
      steadyTransfersPerSecond: undefined,
      peakRssMbPerProcess: stopped.map((s) => mb(s.peakRssKb)),
      finalStatus: undefined,
      invariants: undefined,
    };
  } finally {
    await stopAll(services);
    await db.drop();
  }
}

function cpuPerItem(services: Service[], before: CpuSnapshot, count: number) {
  const processMs = services.reduce((sum, s) => sum + (processCpuMs(s.pid) ?? 0), 0);
  const { postgresMs } = cpuDelta(before, cpuSnapshot([]));
  return { processes: round(processMs / count, 3), postgres: round(postgresMs / count, 3) };
}

const mb = (kb: number | undefined) => (kb === undefined ? undefined : round(kb / 1024, 1));

export async function runDrainScenario(
  bench: Bench,
  options: { workerCounts?: number[]; noopCounts?: number[]; workerConcurrencies?: number[] } = {},
): Promise<DrainResult> {
  const count = bench.quick ? Math.min(bench.drainCount, 500) : bench.drainCount;
  const workerCounts = options.workerCounts ?? bench.drainProcesses ?? (bench.quick ? [1] : [1, 2, 4]);
  const noopCounts = options.noopCounts ?? bench.drainProcesses ?? (bench.quick ? [1] : [1, 4]);
  // At least 100 purchases/s, however large the backlog.
  const timeoutMs = bench.quick ? 60_000 : Math.max(240_000, count * 10);
  const drains: DrainRun[] = [];
  for (const processes of workerCounts) drains.push(await drainWith(bench, processes, count, timeoutMs));
  // One worker at other WORKER_CONCURRENCY values: where the default sits among them.
  const concurrencies = (
    options.workerConcurrencies ??
    bench.workerConcurrencies ??
    (bench.quick ? [] : [8, 16])
  ).filter((c) => c !== DEFAULT_WORKER_CONCURRENCY);
  for (const c of concurrencies) drains.push(await drainWith(bench, 1, count, timeoutMs, c));
  const noop: DrainRun[] = [];
  for (const processes of noopCounts) noop.push(await noopWith(bench, processes, count, timeoutMs));
  return { count, workerConcurrency: DEFAULT_WORKER_CONCURRENCY, drains, noop };
}
