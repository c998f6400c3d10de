/**
 * Scenario 3, decoupling: confirm latency while the http payout gateway's treasury answers in
 * 0 ms, 200 ms, 1 s or fails every call, at a steady arrival rate (open loop), with the worker
 * paying behind the API. The same cases against the synchronous baseline (payouts inside the
 * confirm request) show what the outbox buys.
 */
import { startFakeTreasury, type TreasuryMode } from '@referrals/testing';
import {
  type Bench,
  runLoadClient,
  startApi,
  startSyncConfirmServer,
  startWorkerProcess,
  stopAll,
} from '../harness.ts';
import type { Service } from '../processes.ts';
import { seedMarketplace } from '../seed.ts';
import { type LatencySummary, ratio, round, summarize } from '../stats.ts';

export interface TreasuryCase {
  name: string;
  mode: TreasuryMode;
}

export const TREASURY_CASES: TreasuryCase[] = [
  { name: '0 ms', mode: { kind: 'succeed' } },
  { name: '200 ms', mode: { kind: 'slow', delayMs: 200 } },
  { name: '1 s', mode: { kind: 'slow', delayMs: 1000 } },
  { name: 'failing', mode: { kind: 'fail', times: Number.POSITIVE_INFINITY, status: 503 } },
];

export interface DecouplingRun {
  treasury: string;
  mode: 'outbox' | 'synchronous';
  rate: number;
  seconds: number;
  confirm: LatencySummary;
  /** confirm p50 / p99 divided by the same mode's 0 ms case. */
  p50Ratio: number;
  p99Ratio: number;
  confirmed: number;
  errors: Record<string, number>;
  treasuryCalls: { paid: number; failed: number };
  /** Purchases per payout status when the run ended (outbox mode: the worker is still behind on slow cases). */
  payoutStatus: Record<string, number>;
}

export interface DecouplingResult {
  rate: number;
  seconds: number;
  runs: DecouplingRun[];
}

async function runCase(
  bench: Bench,
  mode: DecouplingRun['mode'],
  treasuryCase: TreasuryCase,
  rate: number,
  seconds: number,
): Promise<Omit<DecouplingRun, 'p50Ratio' | 'p99Ratio'>> {
  const db = await bench.database('decoupling');
  const treasury = await startFakeTreasury(treasuryCase.mode);
  const services: Service[] = [];
  try {
    const market = await seedMarketplace(db.pool);
    const gatewayEnv = { PAYOUT_GATEWAY: 'http', TREASURY_URL: treasury.url, TREASURY_TIMEOUT_MS: '5000' };
    let baseUrl: string;
    if (mode === 'outbox') {
      const api = await startApi(bench, db.url, gatewayEnv);
      services.push(api, await startWorkerProcess(bench, db.url, gatewayEnv));
      baseUrl = api.baseUrl;
    } else {
      const server = await startSyncConfirmServer(bench, db.url, treasury.url);
      services.push(server);
      baseUrl = server.baseUrl;
    }
    bench.log(`decoupling: ${mode}, treasury ${treasuryCase.name}, ${rate}/s for ${seconds} s`);
    const load = await runLoadClient(bench, {
      baseUrl,
      mode: 'open',
      rate,
      durationMs: seconds * 1000,
      warmupMs: bench.quick ? 500 : 2000,
      buyerIds: market.buyerIds,
      contentIds: market.contentIds,
    });
    const { rows } = await db.pool.query<{ status: string | null; n: number }>(
      `select referral_payout_status as status, count(*)::int as n from purchases group by 1`,
    );
    return {
      treasury: treasuryCase.name,
      mode,
      rate,
      seconds,
      confirm: summarize(load.confirmMs),
      confirmed: load.confirmed,
      errors: load.errors,
      treasuryCalls: { ...treasury.counts },
      payoutStatus: Object.fromEntries(rows.map((r) => [r.status ?? 'pending', r.n])),
    };
  } finally {
    await stopAll(services);
    await treasury.close();
    await db.drop();
  }
}

export async function runDecouplingScenario(
  bench: Bench,
  options: { syncCases?: string[] } = {},
): Promise<DecouplingResult> {
  const rate = bench.decouplingRate ?? (bench.quick ? 20 : 50);
  const seconds = bench.quick ? 2 : 10;
  const syncCases = options.syncCases ?? TREASURY_CASES.map((c) => c.name);
  const runs: DecouplingRun[] = [];
  for (const mode of ['outbox', 'synchronous'] as const) {
    let base: LatencySummary | undefined;
    for (const treasuryCase of TREASURY_CASES) {
      if (mode === 'synchronous' && !syncCases.includes(treasuryCase.name)) continue;
      const result = await runCase(bench, mode, treasuryCase, rate, seconds);
      base ??= result.confirm;
      runs.push({
        ...result,
        p50Ratio: ratio(result.confirm.p50, base.p50),
        p99Ratio: ratio(result.confirm.p99, base.p99),
      });
    }
  }
  return { rate: round(rate), seconds, runs };
}
