/**
 * Profile: round trips to Postgres per operation, counted by a proxy in front of each process
 * (every Sync or simple Query is one wait for the server). Requests run one at a time so nothing
 * overlaps; the worker and the no-op reference are counted over a drained backlog, so pg-boss's
 * fetch/complete, the relay's batches and idle polling are included, amortized per purchase.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Bench, PLATFORM_FEE_BPS, productEnv, startApi, startWorkerProcess, stopAll } from '../harness.ts';
import { freePort, NOOP_BOSS_ENTRY, runToCompletion, type Service, startService, waitForHttp } from '../processes.ts';
import { startRoundTripProxy } from '../round-trip-proxy.ts';
import { seedMarketplace, seedQueued } from '../seed.ts';
import { SERVICE_AUTHORIZATION } from '../load-client.ts';
import { round } from '../stats.ts';

export interface ProfileResult {
  requests: number;
  perCreate: number;
  perConfirm: number;
  backlog: number;
  perPayout: number;
  perNoopJob: number;
  /** Postgres transactions committed per purchase while the worker drained (pg_stat_database). */
  commitsPerPayout: number;
}

async function post(url: string, body: unknown): Promise<{ id: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: SERVICE_AUTHORIZATION },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as { id: string };
}

async function until(probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error('profile: backlog did not drain in time');
    await sleep(50);
  }
}

export async function runProfileScenario(bench: Bench): Promise<ProfileResult> {
  const requests = bench.quick ? 20 : 200;
  const backlog = bench.quick ? 200 : 2000;
  const db = await bench.database('profile');
  const services: Service[] = [];
  const apiProxy = await startRoundTripProxy(db.url);
  const workerProxy = await startRoundTripProxy(db.url);
  const noopProxy = await startRoundTripProxy(db.url);
  try {
    const market = await seedMarketplace(db.pool);
    const api = await startApi(bench, apiProxy.url, {}, 'profile-api');
    services.push(api);
    bench.log(`profile: ${requests} creates and confirms one at a time through a counting proxy`);
    const purchase = (i: number) => ({
      buyerId: market.buyerIds[i % market.buyerIds.length]!,
      contentId: market.contentIds[i % market.contentIds.length]!,
    });
    for (let i = 0; i < 10; i++) {
      const { id } = await post(`${api.baseUrl}/api/marketplace/purchases`, purchase(i));
      await post(`${api.baseUrl}/api/marketplace/purchase/${id}/confirm`, { paymentReference: `pay_${id}` });
    }
    apiProxy.reset();
    const ids: string[] = [];
    for (let i = 0; i < requests; i++)
      ids.push((await post(`${api.baseUrl}/api/marketplace/purchases`, purchase(i))).id);
    const creates = apiProxy.roundTrips();
    apiProxy.reset();
    for (const id of ids)
      await post(`${api.baseUrl}/api/marketplace/purchase/${id}/confirm`, { paymentReference: `pay_${id}` });
    const confirms = apiProxy.roundTrips();
    await api.stop();

    // The worker starts on the purchases just confirmed; the counted backlog comes after it settled.
    const queued = async () =>
      (
        await db.pool.query<{ n: number }>(
          `select count(*)::int as n from purchases where referral_payout_status = 'queued'`,
        )
      ).rows[0]!.n;
    services.push(await startWorkerProcess(bench, workerProxy.url, {}, 'profile-worker'));
    await until(async () => (await queued()) === 0, 60_000);
    await seedQueued(db.pool, backlog, PLATFORM_FEE_BPS);
    const commits = async () =>
      (
        await db.pool.query<{ n: number }>(
          `select xact_commit::int as n from pg_stat_database where datname = current_database()`,
        )
      ).rows[0]!.n;
    workerProxy.reset();
    const commitsBefore = await commits();
    await db.pool.query(`select pg_notify('referral_outbox', '')`);
    await until(async () => (await queued()) === 0, 120_000);
    const payouts = workerProxy.roundTrips();
    // Our own polling commits too (two statements per poll, at most a few hundred); pg_stat lags up to 0.5 s.
    await sleep(600);
    const commitsPerPayout = ((await commits()) - commitsBefore) / backlog;
    await stopAll(services);

    const port = await freePort();
    const noop = startService(
      'profile-noop',
      NOOP_BOSS_ENTRY,
      { ...productEnv(noopProxy.url), NOOP_ROLE: 'work', PORT: String(port) },
      bench.logDir,
    );
    services.push(noop);
    await waitForHttp(noop, `http://127.0.0.1:${port}/`, 60_000);
    noopProxy.reset();
    await runToCompletion(
      'profile-noop-insert',
      NOOP_BOSS_ENTRY,
      [],
      { DATABASE_URL: db.url, NOOP_ROLE: 'insert', NOOP_JOBS: String(backlog) },
      bench.logDir,
    );
    await until(
      async () =>
        (
          await db.pool.query<{ n: number }>(
            `select count(*)::int as n from pgboss.job where name = 'bench-noop' and state = 'completed'`,
          )
        ).rows[0]!.n >= backlog,
      120_000,
    );
    const noopTrips = noopProxy.roundTrips();
    return {
      requests,
      perCreate: round(creates / requests, 2),
      perConfirm: round(confirms / requests, 2),
      backlog,
      perPayout: round(payouts / backlog, 2),
      perNoopJob: round(noopTrips / backlog, 2),
      commitsPerPayout: round(commitsPerPayout, 2),
    };
  } finally {
    await stopAll(services);
    await Promise.all([apiProxy.close(), workerProxy.close(), noopProxy.close()]);
    await db.drop();
  }
}
