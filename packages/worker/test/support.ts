import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { type Config, type Database, loadConfig } from '@referrals/core';
import { childProcessEnv, confirmedPurchase, seedReferralChain, waitFor } from '@referrals/testing';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

/** Worker settings that keep retries and polls short enough for a test. */
export function workerEnv(databaseUrl: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'warn',
    PAYOUT_RETRY_LIMIT: '3',
    PAYOUT_RETRY_DELAY_SECONDS: '1',
    OUTBOX_POLL_INTERVAL_MS: '200',
    WORKER_CONCURRENCY: '8',
    TREASURY_TIMEOUT_MS: '2000',
    ...overrides,
  };
}

export function workerConfig(databaseUrl: string, overrides: Record<string, string> = {}): Config {
  return loadConfig(workerEnv(databaseUrl, overrides));
}

/** Confirms `count` purchases of one referral chain (direct + grand), a few at a time. */
export async function queuedPurchases(db: Database, count: number, price = 10_000): Promise<string[]> {
  const chain = await seedReferralChain(db, { price });
  const ids: string[] = [];
  for (let i = 0; i < count; i += 8) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(8, count - i) }, () => confirmedPurchase(db, chain.buyer.id, chain.content.id)),
    );
    ids.push(...batch.map((p) => p.id));
  }
  return ids;
}

/** Referral payout status counts of the given purchases. */
export async function statusCounts(db: Database, ids: string[]): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom('purchases')
    .select(['referral_payout_status as status', sql<number>`count(*)::int`.as('n')])
    .where('id', 'in', ids)
    .groupBy('referral_payout_status')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

export async function waitForStatus(db: Database, ids: string[], status: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => (await statusCounts(db, ids))[status] === ids.length, {
    timeoutMs,
    intervalMs: 100,
    what: `${ids.length} purchases ${status}`,
  });
}

/** Referral earnings credits per (purchase, beneficiary): more than one is a double payout. */
export async function doublePayouts(db: Database): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from (
      select purchase_id, user_id from ledger_entries where account = 'referral_earnings'
      group by purchase_id, user_id having count(*) > 1) d`.execute(db);
  return rows[0]?.n ?? 0;
}

/** pg-boss jobs ever created for these purchases on the payout queue (completed ones included). */
export async function jobsPerPurchase(db: Database, ids: string[]): Promise<{ jobs: number; distinct: number }> {
  const { rows } = await sql<{ jobs: number; distinct: number }>`
    select count(*)::int as jobs, count(distinct data->>'purchaseId')::int as distinct
    from pgboss.job where name = 'referral-payouts' and data->>'purchaseId' = any(${ids})`.execute(db);
  return rows[0] ?? { jobs: 0, distinct: 0 };
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `node packages/worker/src/main.ts` as a real child process. */
export function spawnWorker(env: Record<string, string>): WorkerProcess {
  const child = spawn(process.execPath, [MAIN], {
    env: childProcessEnv({ PATH: process.env.PATH ?? '', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

export async function killAll(processes: WorkerProcess[]): Promise<void> {
  await Promise.all(
    processes.map(async (p) => {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL');
        await p.exited;
      }
    }),
  );
}
