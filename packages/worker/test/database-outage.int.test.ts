/**
 * The API and the worker as real processes against a Postgres of the test's own, which is stopped
 * and started again (fast and immediate) or has its backends terminated while purchases are being
 * created and confirmed. Neither process may die; the API answers 503 with Retry-After while the
 * database is gone and nothing else but success; every purchase ends up paid exactly once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database, migrate } from '@referrals/core';
import {
  childProcessEnv,
  readInvariants,
  type ReferralChain,
  seedReferralChain,
  startThrowawayPostgres,
  type ThrowawayPostgres,
  waitFor,
} from '@referrals/testing';
import { doublePayouts, waitForStatus, workerEnv } from './support.ts';

const API_MAIN = fileURLToPath(new URL('../../api/src/server.ts', import.meta.url));
const WORKER_MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const TOKEN = 'outage-test-admin-token-0123456789';

let postgres: ThrowawayPostgres;
let db: Database;
let chain: ReferralChain;
let running: Child[] = [];

beforeAll(async () => {
  postgres = await startThrowawayPostgres();
  // A small pool whose connections are dropped at once when the server goes away.
  db = createDatabase(postgres.url(), { max: 4, applicationName: 'outage-test' });
  await migrate(db);
  chain = await seedReferralChain(db);
});
afterEach(async () => {
  await Promise.all(running.map((child) => child.kill()));
  running = [];
});
afterAll(async () => {
  await db?.destroy();
  await postgres?.destroy();
});

interface Child {
  readonly process: ChildProcess;
  output(): string;
  alive(): boolean;
  kill(): Promise<void>;
}

function launch(main: string, env: Record<string, string>): Child {
  const child = spawn(process.execPath, [main], {
    env: childProcessEnv({ PATH: process.env.PATH ?? '', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const handle: Child = {
    process: child,
    output: () => output,
    alive: () => child.exitCode === null && child.signalCode === null,
    async kill() {
      if (handle.alive()) child.kill('SIGKILL');
      await exited;
    },
  };
  running.push(handle);
  return handle;
}

/** JSON log lines of a child whose `msg` is `message`. */
const logLines = (child: Child, message: string) =>
  child
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg?: string })
    .filter((line) => line.msg === message);

async function startApi(): Promise<{ api: Child; url: string }> {
  const api = launch(API_MAIN, {
    DATABASE_URL: postgres.url(),
    PORT: '0',
    ADMIN_API_TOKEN: TOKEN,
    SERVICE_API_TOKEN: TOKEN,
    LOG_LEVEL: 'info',
  });
  const url = await waitFor(() => /"url":"(http:[^"]+)"/.exec(api.output())?.[1], {
    what: 'the API to listen',
    timeoutMs: 30_000,
  });
  return { api, url };
}

function startWorker(): Child {
  return launch(WORKER_MAIN, workerEnv(postgres.url(), { LOG_LEVEL: 'info' }));
}

/**
 * Clients that create and confirm purchases, each retrying a 503 after a short pause as a client
 * honouring Retry-After would (any other failure, or a refused connection, fails the test).
 */
function marketplaceLoad(apiUrl: string, clients: number, purchasesPerClient: number) {
  const statuses = new Map<number, number>();
  const confirmed: string[] = [];
  let missingRetryAfter = 0;

  async function call(
    method: string,
    path: string,
    body: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ id: string }> {
    for (;;) {
      const response = await fetch(`${apiUrl}${path}`, {
        method,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers },
        body: JSON.stringify(body),
      });
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      if (response.status === 503) {
        if (!response.headers.get('retry-after')) missingRetryAfter++;
        await response.body?.cancel();
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
      return (await response.json()) as { id: string };
    }
  }

  async function client(): Promise<void> {
    for (let i = 0; i < purchasesPerClient; i++) {
      // The same key and reference on every retry: a request that committed before its answer was
      // lost is replayed, not repeated.
      const purchase = await call(
        'POST',
        '/api/marketplace/purchases',
        { buyerId: chain.buyer.id, contentId: chain.content.id },
        { 'idempotency-key': randomUUID() },
      );
      await call('POST', `/api/marketplace/purchase/${purchase.id}/confirm`, {
        paymentReference: `pay-${purchase.id}`,
      });
      confirmed.push(purchase.id);
    }
  }

  const done = Promise.all(Array.from({ length: clients }, () => client()));
  return { done, statuses, confirmed, missingRetryAfter: () => missingRetryAfter };
}

async function expectEveryPurchasePaidOnce(ids: string[]): Promise<void> {
  await waitForStatus(db, ids, 'completed', 90_000);
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from purchases where id = any(${ids})`.execute(
    db,
  );
  expect(rows[0]?.n).toBe(ids.length);
  expect(await doublePayouts(db)).toBe(0);
  const invariants = await readInvariants(db);
  for (const total of Object.values(invariants.ledgerTotals)) expect(total).toBe(0);
  expect(invariants).toMatchObject({
    confirmedWithoutStatus: 0,
    queuedWithoutOutbox: 0,
    payoutsOverFee: 0,
    doubleCredits: 0,
  });
}

describe('a Postgres outage', () => {
  it.each(['fast', 'immediate'] as const)(
    'restart -m %s under load: no process dies, only 503s while it is down, every purchase paid once',
    async (mode) => {
      const { api, url } = await startApi();
      const worker = startWorker();
      await waitFor(() => worker.output().includes('worker started'), {
        what: 'the worker to start',
        timeoutMs: 30_000,
      });

      const load = marketplaceLoad(url, 6, 25);
      await waitFor(() => load.confirmed.length >= 30, { what: 'confirmations before the outage', timeoutMs: 60_000 });
      await postgres.stop(mode);
      // Down for as long as it takes the clients to see it, so the outage is real for both processes.
      await waitFor(() => (load.statuses.get(503) ?? 0) >= 10, {
        what: 'clients answered 503 during the outage',
        timeoutMs: 30_000,
      });
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.headers.get('retry-after')).toBe('2');
      await postgres.start();
      await load.done;

      expect(api.alive(), api.output()).toBe(true);
      expect(worker.alive(), worker.output()).toBe(true);
      expect([...load.statuses.keys()].sort()).toEqual([200, 201, 503]);
      expect(load.missingRetryAfter()).toBe(0);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      await expectEveryPurchasePaidOnce(load.confirmed);
      expect(load.confirmed).toHaveLength(150);

      // One line when the database went away and one when it came back, however many failures between.
      expect(logLines(worker, 'database unavailable: retrying until it is back')).toHaveLength(1);
      expect(logLines(worker, 'database available again')).toHaveLength(1);
      expect(worker.output()).not.toMatch(/"level":60/);
    },
  );

  it('terminated backends under load: requests on them answer 503 and nothing else breaks', async () => {
    const { api, url } = await startApi();
    const worker = startWorker();
    await waitFor(() => worker.output().includes('worker started'), { what: 'the worker to start', timeoutMs: 30_000 });

    const load = marketplaceLoad(url, 6, 25);
    let terminated = 0;
    for (const progress of [20, 50, 80, 110]) {
      await waitFor(() => load.confirmed.length >= progress, { what: `${progress} confirmations`, timeoutMs: 60_000 });
      terminated += await postgres.terminateBackends('referral-payouts');
    }
    await load.done;

    expect(terminated).toBeGreaterThan(0);
    expect(api.alive(), api.output()).toBe(true);
    expect(worker.alive(), worker.output()).toBe(true);
    expect([...load.statuses.keys()].filter((status) => status !== 200 && status !== 201 && status !== 503)).toEqual(
      [],
    );
    await expectEveryPurchasePaidOnce(load.confirmed);
  });

  it('a worker started while Postgres is down waits for it, then relays and pays on its own', async () => {
    await postgres.stop('fast');
    const worker = startWorker();
    try {
      await waitFor(() => logLines(worker, 'database unavailable: retrying until it is back').length === 1, {
        what: 'the worker to report the database unavailable',
        timeoutMs: 30_000,
      });
    } finally {
      await postgres.start();
    }
    await waitFor(() => worker.output().includes('worker started'), {
      what: 'the worker to start once the database is back',
      timeoutMs: 30_000,
    });
    expect(worker.alive()).toBe(true);
    expect(logLines(worker, 'database unavailable: retrying until it is back')).toHaveLength(1);

    const { url } = await startApi();
    const load = marketplaceLoad(url, 2, 10);
    await load.done;
    await expectEveryPurchasePaidOnce(load.confirmed);
  });
});
