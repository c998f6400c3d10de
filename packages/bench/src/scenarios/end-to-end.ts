/**
 * Scenario 4, end-to-end latency at a steady arrival rate below the drain rate (open loop, so a
 * backlog cannot hide in the client): confirm → `completed`, split into its hops from database
 * timestamps: confirmed_at → outbox.published_at → pgboss.job.started_on → referral_payout_completed_at.
 *
 * All four are now() of their transaction, i.e. when that transaction began; each hop therefore
 * also carries the previous transaction's remaining statements and commit (a few ms at most).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { createDatabase, REFERRAL_PAYOUT_QUEUE } from '@referrals/core';
import { type FakeTreasury, type InvariantReport, readInvariants, startFakeTreasury } from '@referrals/testing';
import { type Bench, runLoadClient, startApi, startWorkerProcess, stopAll } from '../harness.ts';
import type { Service } from '../processes.ts';
import { seedMarketplace } from '../seed.ts';
import { type LatencySummary, summarize } from '../stats.ts';

/** Which payout gateway the worker pays through: the ledger, or the http treasury answering at once. */
export type EndToEndGateway = 'ledger' | 'http';

export interface EndToEndResult {
  gateway: EndToEndGateway;
  rate: number;
  seconds: number;
  purchases: number;
  completed: number;
  /** Purchases still not completed when the wait gave up (should be 0). */
  notCompleted: number;
  total: LatencySummary;
  hops: { toPublished: LatencySummary; toJobStarted: LatencySummary; toCompleted: LatencySummary };
  /**
   * confirmed_at → pgboss.job.completed_on: pg-boss marks the job complete after the handler's
   * transaction committed, so this bounds the true commit → paid time from above.
   */
  toJobCompleted: LatencySummary;
  confirmHttp: LatencySummary;
  lateStarts: number;
  errors: Record<string, number>;
  invariants: InvariantReport;
}

export async function runEndToEndScenario(
  bench: Bench,
  options: { rate?: number; gateway?: EndToEndGateway; seconds?: number; workerNodeArgs?: string[] } = {},
): Promise<EndToEndResult> {
  const gateway = options.gateway ?? 'ledger';
  const rate = options.rate ?? bench.endToEndRate ?? (bench.quick ? 20 : 100);
  const seconds = options.seconds ?? (bench.quick ? 3 : 30);
  const db = await bench.database(`e2e${gateway === 'http' ? 'http' : ''}${options.workerNodeArgs ? 'profile' : ''}`);
  const services: Service[] = [];
  // The http gateway against a treasury that answers at once: what the network path itself costs.
  let treasury: FakeTreasury | undefined;
  try {
    const market = await seedMarketplace(db.pool);
    let env: Record<string, string> = {};
    if (gateway === 'http') {
      treasury = await startFakeTreasury({ kind: 'succeed' });
      env = { PAYOUT_GATEWAY: 'http', TREASURY_URL: treasury.url };
    }
    const api = await startApi(bench, db.url, env);
    services.push(api, await startWorkerProcess(bench, db.url, env, 'worker', options.workerNodeArgs));
    const plan = {
      baseUrl: api.baseUrl,
      mode: 'open' as const,
      rate,
      buyerIds: market.buyerIds,
      contentIds: market.contentIds,
    };

    // Warm-up (JIT, pools, pg-boss caches), drained before the measured window starts.
    await runLoadClient(bench, { ...plan, durationMs: bench.quick ? 500 : 3000 });
    await waitUntilSettled(db.pool, 30_000);
    const { rows: mark } = await db.pool.query<{ at: Date }>('select clock_timestamp() as at');

    bench.log(`end-to-end (${gateway} gateway): ${rate} purchases/s for ${seconds} s`);
    const load = await runLoadClient(bench, { ...plan, durationMs: seconds * 1000 });
    await waitUntilSettled(db.pool, 60_000);

    const { rows } = await db.pool.query<{
      total: number | null;
      published: number | null;
      started: number | null;
      completed: number | null;
      jobCompleted: number | null;
    }>(
      `select extract(epoch from p.referral_payout_completed_at - p.confirmed_at) * 1000 as total,
              extract(epoch from o.published_at - p.confirmed_at) * 1000 as published,
              extract(epoch from j.started_on - o.published_at) * 1000 as started,
              extract(epoch from p.referral_payout_completed_at - j.started_on) * 1000 as completed,
              extract(epoch from j.completed_on - p.confirmed_at) * 1000 as "jobCompleted"
         from purchases p
         join outbox o on o.aggregate_id = p.id
         left join pgboss.job j on j.name = $2 and j.id = p.id
        where p.confirmed_at >= $1 and p.referral_payout_status = 'completed'`,
      [mark[0]!.at, REFERRAL_PAYOUT_QUEUE],
    );
    const { rows: counts } = await db.pool.query<{ purchases: number; completed: number }>(
      `select count(*)::int as purchases, count(*) filter (where referral_payout_status = 'completed')::int as completed
         from purchases where confirmed_at >= $1`,
      [mark[0]!.at],
    );
    const values = (key: 'total' | 'published' | 'started' | 'completed' | 'jobCompleted') =>
      rows
        .map((r) => r[key])
        .filter((v): v is number => v !== null)
        .map(Number);
    await stopAll(services);
    const kysely = createDatabase(db.url, { max: 2 });
    const invariants = await readInvariants(kysely).finally(() => kysely.destroy());
    return {
      gateway,
      rate,
      seconds,
      purchases: counts[0]!.purchases,
      completed: counts[0]!.completed,
      notCompleted: counts[0]!.purchases - counts[0]!.completed,
      total: summarize(values('total')),
      hops: {
        toPublished: summarize(values('published')),
        toJobStarted: summarize(values('started')),
        toCompleted: summarize(values('completed')),
      },
      toJobCompleted: summarize(values('jobCompleted')),
      confirmHttp: summarize(load.confirmMs),
      lateStarts: load.lateStarts,
      errors: load.errors,
      invariants,
    };
  } finally {
    await stopAll(services);
    await treasury?.close();
    await db.drop();
  }
}

/** Waits until no confirmed purchase is still queued (or the timeout passes). */
async function waitUntilSettled(pool: pg.Pool, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { rows } = await pool.query<{ n: number }>(
      `select count(*)::int as n from purchases where referral_payout_status = 'queued'`,
    );
    if (rows[0]!.n === 0) return;
    await sleep(100);
  }
}
