/**
 * Scenarios "slow treasury" and "outage": the http payout gateway against a treasury that answers
 * slowly or not at all, with the API and ONE worker at default settings (WORKER_CONCURRENCY,
 * TREASURY_MAX_IN_FLIGHT, retries), purchases arriving at a steady rate (open loop).
 *
 * * slow treasury: 600 purchases confirmed at 50/s through a treasury that answers every transfer
 *   after 1 s (and 200 ms): how long after the last confirm the last purchase is paid, purchases/s
 *   paid by the worker, and the peak of database connections of the API and the worker together.
 * * outage: 10 purchases/s while the treasury answers 500 to everything for 90 s in the middle of
 *   the run: purchases failed, treasury calls during the outage, and seconds from recovery until
 *   nothing is queued; every level paid exactly once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { createDatabase } from '@referrals/core';
import { type FakeTreasury, type InvariantReport, readInvariants, startFakeTreasury } from '@referrals/testing';
import { type Bench, type BenchDatabase, runLoadClient, startApi, startWorkerProcess, stopAll } from '../harness.ts';
import type { Service } from '../processes.ts';
import { seedMarketplace } from '../seed.ts';
import { round } from '../stats.ts';

export interface SlowTreasuryRun {
  delayMs: number;
  rate: number;
  purchases: number;
  completed: number;
  failed: number;
  /** From the last confirm to the last purchase completed; null when not all completed in time. */
  secondsAfterLastConfirm: number | null;
  /** Completed purchases over the span from the first confirm to the last completion. */
  paidPerSecond: number;
  /** Most backends of the API and the worker seen at once (pg_stat_activity, sampled every 100 ms). */
  peakConnections: number;
  treasuryRequests: number;
  /** Most transfers the treasury had open at once. */
  peakTransfersInFlight: number;
  invariants: InvariantReport;
}

export interface OutageResult {
  rate: number;
  outageSeconds: number;
  purchases: number;
  completed: number;
  failed: number;
  /** Requests that reached the treasury while it was down. */
  treasuryCallsDuringOutage: number;
  /** From the treasury's recovery until no purchase was queued; null when it did not drain in time. */
  secondsToDrainAfterRecovery: number | null;
  /** Levels paid vs transfers the treasury accepted: equal when every level was paid exactly once. */
  levelsPaid: number;
  transfersAccepted: number;
  invariants: InvariantReport;
}

export interface SlowTreasuryResult {
  runs: SlowTreasuryRun[];
}

const BENCH_APPLICATION = 'referral-payouts-bench';

/** Samples the product's connections to one database until stopped; resolves with the peak. */
function sampleConnections(pool: pg.Pool, database: string): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const { rows } = await pool.query<{ n: number }>(
        'select count(*)::int as n from pg_stat_activity where datname = $1 and application_name <> $2',
        [database, BENCH_APPLICATION],
      );
      peak = Math.max(peak, rows[0]!.n);
      await sleep(100);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

/** Samples the treasury's open requests; resolves with the peak. */
function sampleInFlight(treasury: FakeTreasury): { stop(): number } {
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, treasury.inFlight)), 20);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

async function statusCounts(pool: pg.Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ status: string; n: number }>(
    'select referral_payout_status as status, count(*)::int as n from purchases where referral_payout_status is not null group by 1',
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** Polls until no purchase is queued; resolves with when that was first seen, or null at the deadline. */
async function settled(pool: pg.Pool, timeoutMs: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (((await statusCounts(pool)).queued ?? 0) === 0) return Date.now();
    await sleep(100);
  }
  return null;
}

async function invariantsOf(url: string): Promise<InvariantReport> {
  const kysely = createDatabase(url, { max: 2 });
  return readInvariants(kysely).finally(() => kysely.destroy());
}

/** Seeds the marketplace and starts the API and one worker paying through `treasury`. */
async function startThroughTreasury(bench: Bench, db: BenchDatabase, treasury: FakeTreasury, services: Service[]) {
  const market = await seedMarketplace(db.pool);
  const env = { PAYOUT_GATEWAY: 'http', TREASURY_URL: treasury.url };
  const api = await startApi(bench, db.url, env);
  services.push(api, await startWorkerProcess(bench, db.url, env));
  return { market, api };
}

async function runSlow(bench: Bench, delayMs: number): Promise<SlowTreasuryRun> {
  const rate = bench.quick ? 20 : 50;
  const seconds = bench.quick ? 3 : 12;
  const db = await bench.database(`slow${delayMs}`);
  const treasury = await startFakeTreasury({ kind: 'slow', delayMs });
  const services: Service[] = [];
  try {
    const { market, api } = await startThroughTreasury(bench, db, treasury, services);
    bench.log(`slow treasury: ${delayMs} ms per transfer, ${rate} purchases/s for ${seconds} s`);
    const connections = sampleConnections(db.pool, db.name);
    const inFlight = sampleInFlight(treasury);
    await runLoadClient(bench, {
      baseUrl: api.baseUrl,
      mode: 'open',
      rate,
      durationMs: seconds * 1000,
      buyerIds: market.buyerIds,
      contentIds: market.contentIds,
    });
    await settled(db.pool, 180_000);
    const peakConnections = await connections.stop();
    const peakTransfersInFlight = inFlight.stop();
    const { rows } = await db.pool.query<{
      after: number | null;
      span: number | null;
      completed: number;
      purchases: number;
    }>(
      `select extract(epoch from max(referral_payout_completed_at) - max(confirmed_at))::float8 as after,
              extract(epoch from max(referral_payout_completed_at) - min(confirmed_at))::float8 as span,
              count(*) filter (where referral_payout_status = 'completed')::int as completed,
              count(*)::int as purchases
         from purchases where status = 'confirmed'`,
    );
    const row = rows[0]!;
    const counts = await statusCounts(db.pool);
    await stopAll(services);
    return {
      delayMs,
      rate,
      purchases: row.purchases,
      completed: row.completed,
      failed: counts.failed ?? 0,
      secondsAfterLastConfirm: row.completed === row.purchases && row.after !== null ? round(row.after, 2) : null,
      paidPerSecond: row.span ? round(row.completed / row.span, 1) : 0,
      peakConnections,
      treasuryRequests: treasury.requestCount,
      peakTransfersInFlight,
      invariants: await invariantsOf(db.url),
    };
  } finally {
    await stopAll(services);
    await treasury.close();
    await db.drop();
  }
}

export async function runSlowTreasuryScenario(bench: Bench): Promise<SlowTreasuryResult> {
  const runs: SlowTreasuryRun[] = [];
  for (const delayMs of [1000, 200]) runs.push(await runSlow(bench, delayMs));
  return { runs };
}

export async function runOutageScenario(bench: Bench): Promise<OutageResult> {
  const rate = 10;
  const before = bench.quick ? 3 : 10;
  const outage = bench.quick ? 10 : 90;
  const after = bench.quick ? 5 : 30;
  const db = await bench.database('outage');
  const treasury = await startFakeTreasury({ kind: 'succeed' });
  const services: Service[] = [];
  try {
    const { market, api } = await startThroughTreasury(bench, db, treasury, services);
    bench.log(
      `outage: ${rate} purchases/s for ${before + outage + after} s, the treasury down for ${outage} s after ${before} s`,
    );
    const load = runLoadClient(bench, {
      baseUrl: api.baseUrl,
      mode: 'open',
      rate,
      durationMs: (before + outage + after) * 1000,
      buyerIds: market.buyerIds,
      contentIds: market.contentIds,
    });
    await sleep(before * 1000);
    treasury.setMode({ kind: 'fail', times: Number.POSITIVE_INFINITY });
    const callsAtOutage = treasury.requestCount;
    await sleep(outage * 1000);
    treasury.setMode({ kind: 'succeed' });
    const recovered = Date.now();
    const callsDuringOutage = treasury.requestCount - callsAtOutage;
    const drainedAt = await settled(db.pool, 120_000);
    await load;
    await settled(db.pool, 60_000);
    const counts = await statusCounts(db.pool);
    const { rows } = await db.pool.query<{ n: number }>(
      `select count(*)::int as n from referral_payouts where status = 'paid'`,
    );
    await stopAll(services);
    return {
      rate,
      outageSeconds: outage,
      purchases: Object.values(counts).reduce((a, b) => a + b, 0),
      completed: counts.completed ?? 0,
      failed: counts.failed ?? 0,
      treasuryCallsDuringOutage: callsDuringOutage,
      secondsToDrainAfterRecovery: drainedAt === null ? null : round((drainedAt - recovered) / 1000, 2),
      levelsPaid: rows[0]!.n,
      transfersAccepted: treasury.accepted().length,
      invariants: await invariantsOf(db.url),
    };
  } finally {
    await stopAll(services);
    await treasury.close();
    await db.drop();
  }
}
