/**
 * What every scenario stands on: a fresh database cloned from the migrated template, the product's
 * own processes started with an environment, and the load client run as a separate process.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { createPool } from '@referrals/core';
import { createDatabaseFromTemplate, prepareTemplate } from '@referrals/testing';
import { type LoadPlan, type LoadResult, SERVICE_TOKEN } from './load-client.ts';
import {
  API_ENTRY,
  freePort,
  LOAD_CLIENT_ENTRY,
  runToCompletion,
  type Service,
  startService,
  SYNC_CONFIRM_ENTRY,
  waitForHttp,
  WORKER_ENTRY,
} from './processes.ts';

export const ADMIN_TOKEN = 'bench-admin-token-0123456789';
export const PLATFORM_FEE_BPS = 3000;

export interface BenchSettings {
  adminUrl: string;
  quick: boolean;
  logDir: string;
  /** Purchases inserted for the drain scenario. */
  drainCount: number;
  /** Arrival rates (purchases/s) of the open-loop scenarios. */
  endToEndRate?: number;
  decouplingRate?: number;
  /** WORKER_CONCURRENCY values one worker drains with, besides the default (BENCH_WORKER_CONCURRENCY). */
  workerConcurrencies?: number[];
  /** Worker (and no-op reference) process counts of the drain (BENCH_DRAIN_PROCESSES). */
  drainProcesses?: number[];
}

export interface BenchDatabase {
  name: string;
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

export interface Bench extends BenchSettings {
  template: string;
  database(label: string): Promise<BenchDatabase>;
  /** Prints a line of progress (stderr, so stdout stays clean for piping). */
  log(message: string): void;
}

export async function openBench(settings: BenchSettings): Promise<Bench> {
  const template = await prepareTemplate(settings.adminUrl);
  return {
    ...settings,
    template,
    log: (message) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`),
    async database(label) {
      const created = await createDatabaseFromTemplate(
        settings.adminUrl,
        template,
        `rp_bench_${label.replace(/[^a-z0-9]/g, '')}`,
      );
      const pool = createPool(created.url, { max: 4, applicationName: 'referral-payouts-bench' });
      return {
        name: created.name,
        url: created.url,
        pool,
        async drop() {
          await pool.end();
          await created.drop();
        },
      };
    },
  };
}

/** Environment shared by the API, the workers and the baseline: what an operator would set. */
export function productEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    HOST: '127.0.0.1',
    // Request logs at info would put pino's cost on every request; operators benchmark at warn too.
    LOG_LEVEL: 'warn',
    ADMIN_API_TOKEN: ADMIN_TOKEN,
    SERVICE_API_TOKEN: SERVICE_TOKEN,
    PLATFORM_FEE_BPS: String(PLATFORM_FEE_BPS),
    ...extra,
  };
}

export interface HttpService extends Service {
  baseUrl: string;
}

export async function startApi(
  bench: Bench,
  databaseUrl: string,
  extra: Record<string, string> = {},
  name = 'api',
  nodeArgs: string[] = [],
): Promise<HttpService> {
  return onFreePort(async (port) => {
    const service = startService(
      name,
      API_ENTRY,
      productEnv(databaseUrl, { PORT: String(port), ...extra }),
      bench.logDir,
      nodeArgs,
    );
    const baseUrl = `http://127.0.0.1:${port}`;
    await waitForHttp(service, `${baseUrl}/healthz`);
    return { ...service, baseUrl };
  });
}

/**
 * Starts a service on a port that was free a moment ago; another process on the machine may take it
 * in between, so a start that fails with EADDRINUSE tries another port.
 */
async function onFreePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await freePort());
    } catch (error) {
      if (attempt >= 5 || !(error instanceof Error) || !error.message.includes('EADDRINUSE')) throw error;
    }
  }
}

export async function startSyncConfirmServer(
  bench: Bench,
  databaseUrl: string,
  treasuryUrl: string,
): Promise<HttpService> {
  const port = await freePort();
  const service = startService(
    'sync-confirm',
    SYNC_CONFIRM_ENTRY,
    productEnv(databaseUrl, { PORT: String(port), TREASURY_URL: treasuryUrl }),
    bench.logDir,
  );
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(service, `${baseUrl}/healthz`);
  return { ...service, baseUrl };
}

/** A worker process; ready once its metrics endpoint answers, which it serves after the relay starts. */
export async function startWorkerProcess(
  bench: Bench,
  databaseUrl: string,
  extra: Record<string, string> = {},
  name = 'worker',
  nodeArgs: string[] = [],
): Promise<Service> {
  return onFreePort(async (port) => {
    const service = startService(
      name,
      WORKER_ENTRY,
      productEnv(databaseUrl, { WORKER_METRICS_PORT: String(port), ...extra }),
      bench.logDir,
      nodeArgs,
    );
    await waitForHttp(service, `http://127.0.0.1:${port}/metrics`, 60_000);
    return service;
  });
}

let planSequence = 0;

export async function runLoadClient(bench: Bench, plan: LoadPlan): Promise<LoadResult> {
  const file = join(bench.logDir, `load-plan-${++planSequence}.json`);
  writeFileSync(file, JSON.stringify(plan));
  const stdout = await runToCompletion('load-client', LOAD_CLIENT_ENTRY, [file], {}, bench.logDir);
  return JSON.parse(stdout.trim().split('\n').pop()!) as LoadResult;
}

export interface ServerFacts {
  postgresVersion: string;
  synchronousCommit: string;
  maxConnections: number;
  sharedBuffers: string;
}

export async function serverFacts(pool: pg.Pool): Promise<ServerFacts> {
  const one = async (q: string) => String((await pool.query<{ v: string }>(q)).rows[0]?.v);
  return {
    postgresVersion: await one('select version() as v'),
    synchronousCommit: await one(`select current_setting('synchronous_commit') as v`),
    maxConnections: Number(await one(`select current_setting('max_connections') as v`)),
    sharedBuffers: await one(`select current_setting('shared_buffers') as v`),
  };
}

export async function stopAll(services: (Service | undefined)[]): Promise<void> {
  await Promise.all(services.map((s) => s?.stop()));
}
