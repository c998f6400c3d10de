/**
 * Measures, against a real Postgres and the real worker process (`node packages/worker/src/main.ts`):
 *
 * 1. confirm → `completed` latency of one purchase at a time: each purchase is confirmed while the
 *    worker is idle and waited for before the next, and the figure is read from the database
 *    timestamps (referral_payout_completed_at − confirmed_at), so the test harness's own polling
 *    adds nothing;
 * 2. the time one worker takes to drain 1,000 queued purchases: the purchases are confirmed while no
 *    worker runs, then one worker is started. Reported both as wall time from spawning the process
 *    (includes Node and pg-boss start-up) and as database time from the first outbox row published
 *    to the last purchase completed.
 *
 * Usage: ADMIN_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
 *          node packages/worker/scripts/measure-payouts.ts [--single 30] [--drain 1000] [--gateway ledger|http]
 * A scratch database `rp_measure_<time>` is created and dropped afterwards.
 */
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import pg from 'pg';
import { createDatabase, type Database, migrate } from '@referrals/core';
import { confirmedPurchase, databaseUrl, seedReferralChain, startFakeTreasury, waitFor } from '@referrals/testing';

const { values: args } = parseArgs({
  options: {
    single: { type: 'string', default: '30' },
    drain: { type: 'string', default: '1000' },
    gateway: { type: 'string', default: 'ledger' },
    concurrency: { type: 'string', default: '8' },
  },
});
const adminUrl = process.env.ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

const name = `rp_measure_${Date.now().toString(36)}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`create database ${name}`);
const url = databaseUrl(adminUrl, name);
const db = createDatabase(url, { max: 8 });
const treasury = args.gateway === 'http' ? await startFakeTreasury() : undefined;

function startWorkerProcess() {
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: url,
      LOG_LEVEL: 'warn',
      WORKER_CONCURRENCY: args.concurrency,
      PAYOUT_GATEWAY: args.gateway,
      ...(treasury ? { TREASURY_URL: treasury.url } : {}),
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, stop: async () => (child.kill('SIGTERM'), exited) };
}

async function completedCount(db: Database, ids: string[]): Promise<number> {
  const row = await db
    .selectFrom('purchases')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('id', 'in', ids)
    .where('referral_payout_status', '=', 'completed')
    .executeTakeFirstOrThrow();
  return row.n;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

try {
  await migrate(db);
  const chain = await seedReferralChain(db, { price: 10_000 });

  // 1. One purchase at a time against an idle, already started worker.
  const worker = startWorkerProcess();
  const warmup = await confirmedPurchase(db, chain.buyer.id, chain.content.id);
  await waitFor(async () => (await completedCount(db, [warmup.id])) === 1, { timeoutMs: 60_000, intervalMs: 20 });
  const lags: number[] = [];
  for (let i = 0; i < Number(args.single); i++) {
    // Idle gaps in between, as a real trickle of purchases would leave them.
    await sleep(200 + Math.random() * 800);
    const purchase = await confirmedPurchase(db, chain.buyer.id, chain.content.id);
    await waitFor(async () => (await completedCount(db, [purchase.id])) === 1, { timeoutMs: 30_000, intervalMs: 5 });
    const row = await db
      .selectFrom('purchases')
      .select(sql<number>`extract(epoch from referral_payout_completed_at - confirmed_at)::float8 * 1000`.as('ms'))
      .where('id', '=', purchase.id)
      .executeTakeFirstOrThrow();
    lags.push(row.ms);
  }
  await worker.stop();
  lags.sort((a, b) => a - b);
  console.log(
    `confirm → completed, one purchase at a time (n=${lags.length}, gateway ${args.gateway}): ` +
      `median ${percentile(lags, 50).toFixed(1)} ms, p95 ${percentile(lags, 95).toFixed(1)} ms, max ${lags.at(-1)!.toFixed(1)} ms`,
  );

  // 2. A backlog confirmed while no worker runs, then drained by one worker.
  const backlog: string[] = [];
  const total = Number(args.drain);
  for (let i = 0; i < total; i += 16) {
    const batch = await Promise.all(Array.from({ length: Math.min(16, total - i) }, () => confirmedPurchase(db, chain.buyer.id, chain.content.id)));
    backlog.push(...batch.map((p) => p.id));
  }
  const spawned = performance.now();
  const drainer = startWorkerProcess();
  await waitFor(async () => (await completedCount(db, backlog)) === backlog.length, { timeoutMs: 600_000, intervalMs: 50 });
  const wallMs = performance.now() - spawned;
  await drainer.stop();
  const span = await sql<{ ms: number }>`
    select extract(epoch from max(p.referral_payout_completed_at) - min(o.published_at))::float8 * 1000 as ms
    from purchases p join outbox o on o.aggregate_id = p.id
    where p.id = any(${backlog})`.execute(db);
  const dbMs = span.rows[0]!.ms;
  console.log(
    `drain of ${backlog.length} queued purchases by one worker (concurrency ${args.concurrency}, gateway ${args.gateway}): ` +
      `${(wallMs / 1000).toFixed(2)} s from spawning the process, ${(dbMs / 1000).toFixed(2)} s from first publish to last completion ` +
      `(${Math.round(backlog.length / (dbMs / 1000))} purchases/s)`,
  );
} finally {
  await db.destroy();
  await treasury?.close();
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.end();
}
