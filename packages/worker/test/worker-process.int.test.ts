import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureDeploymentGateway, getReferralPayoutStatus } from '@referrals/core';
import { type FakeTreasury, forgetPayoutGateway, readInvariants, startFakeTreasury, waitFor } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import {
  doublePayouts,
  jobsPerPurchase,
  killAll,
  queuedPurchases,
  spawnWorker,
  statusCounts,
  waitForStatus,
  type WorkerProcess,
  workerEnv,
} from './support.ts';

const t = useTestDatabase();
let processes: WorkerProcess[] = [];
let treasury: FakeTreasury | undefined;

// Each test runs a deployment of its own, with its own gateway.
beforeEach(() => forgetPayoutGateway(t.db));

afterEach(async () => {
  await killAll(processes);
  processes = [];
  await treasury?.close();
  treasury = undefined;
});

function start(env: Record<string, string>): WorkerProcess {
  const worker = spawnWorker(env);
  processes.push(worker);
  return worker;
}

async function metricsOf(worker: WorkerProcess): Promise<string> {
  const url = await waitFor(() => /"metrics":"(http:[^"]+)"/.exec(worker.output())?.[1], {
    what: 'the worker to log its metrics URL',
  });
  return (await fetch(url)).text();
}

function counter(metrics: string, name: string): number {
  return metrics
    .split('\n')
    .filter((line) => line.startsWith(name))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

describe('the worker process', () => {
  // First in the file: both processes install pg-boss and create the queues on a fresh database at once.
  it('two workers over 500 confirmed purchases publish each once and pay each once', async () => {
    const env = workerEnv(t.url, { WORKER_METRICS_PORT: '0', LOG_LEVEL: 'info', WORKER_CONCURRENCY: '4' });
    const workers = [start(env), start(env)];
    await Promise.all(
      workers.map((w) =>
        waitFor(() => w.output().includes('worker started'), { what: 'worker start', timeoutMs: 30_000 }),
      ),
    );

    // Confirmed while both relays are listening, so they race for the same outbox rows.
    const ids = await queuedPurchases(t.db, 500);
    await waitForStatus(t.db, ids, 'completed', 120_000);

    expect(await jobsPerPurchase(t.db, ids)).toEqual({ jobs: 500, distinct: 500 });
    const metrics = await Promise.all(workers.map(metricsOf));
    expect(metrics.reduce((sum, m) => sum + counter(m, 'referral_outbox_published_total'), 0)).toBe(500);
    expect(metrics.reduce((sum, m) => sum + counter(m, 'referral_payout_runs_total{outcome="completed"}'), 0)).toBe(
      500,
    );
    expect(metrics.every((m) => m.includes('referral_payout_confirm_to_completed_seconds_bucket'))).toBe(true);
    expect(await doublePayouts(t.db)).toBe(0);
    expect((await readInvariants(t.db)).ledgerTotals).toEqual({ EUR: 0 });

    for (const w of workers) w.child.kill('SIGTERM');
    expect((await Promise.all(workers.map((w) => w.exited))).map((e) => e.code)).toEqual([0, 0]);
  });

  it('refuses to start, exit 2, when its PAYOUT_GATEWAY is not the one recorded for the database', async () => {
    await ensureDeploymentGateway(t.db, 'ledger', 'api');
    const [id] = await queuedPurchases(t.db, 1);
    const worker = start(workerEnv(t.url, { PAYOUT_GATEWAY: 'http', TREASURY_URL: 'http://127.0.0.1:9/treasury' }));
    expect(await worker.exited).toEqual({ code: 2, signal: null });
    expect(worker.output()).toMatch(
      /^worker: PAYOUT_GATEWAY is "http" but this database pays referrals through "ledger" \(recorded .+ by api\); start with PAYOUT_GATEWAY=ledger, or switch the deployment first: npm run manage-referral-payouts -- --set-gateway http\n$/,
    );
    // Nothing was relayed or paid.
    expect((await getReferralPayoutStatus(t.db, id!)).status).toBe('queued');
    expect(
      await t.db.selectFrom('outbox').select('published_at').where('aggregate_id', '=', id!).executeTakeFirst(),
    ).toEqual({
      published_at: null,
    });
  });

  it('finishes the payout in hand on SIGTERM and exits 0', async () => {
    treasury = await startFakeTreasury({ kind: 'slow', delayMs: 1_500 });
    const [id] = await queuedPurchases(t.db, 1);
    const worker = start(
      workerEnv(t.url, { PAYOUT_GATEWAY: 'http', TREASURY_URL: treasury.url, TREASURY_TIMEOUT_MS: '5000' }),
    );

    await waitFor(() => treasury!.inFlight > 0, { what: 'a transfer in flight' });
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });

    const status = await getReferralPayoutStatus(t.db, id!);
    expect(status.status).toBe('completed');
    expect(status.attempts).toBe(1);
    expect(treasury.accepted().filter((a) => a.idempotencyKey.startsWith(id!))).toHaveLength(2);
  });

  it('loses and duplicates nothing when a worker is SIGKILLed with payouts in flight', async () => {
    treasury = await startFakeTreasury({ kind: 'slow', delayMs: 1_000 });
    const env = workerEnv(t.url, {
      PAYOUT_GATEWAY: 'http',
      TREASURY_URL: treasury.url,
      TREASURY_TIMEOUT_MS: '2000',
      WORKER_CONCURRENCY: '8',
    });
    const ids = await queuedPurchases(t.db, 40);
    const first = start(env);

    // The treasury records a transfer when it arrives, so some of these are paid but unanswered.
    await waitFor(() => treasury!.inFlight >= 4, { what: 'transfers in flight' });
    first.child.kill('SIGKILL');
    await first.exited;
    const before = await statusCounts(t.db, ids);
    expect(before.queued ?? 0).toBeGreaterThan(0);

    treasury.setMode({ kind: 'succeed' });
    const second = start(env);
    await waitForStatus(t.db, ids, 'completed', 90_000);

    // The treasury moved money for exactly these (purchase, level) keys, and what we recorded as
    // paid is the very transfer it accepted, credited once in the ledger.
    const accepted = new Map(treasury.accepted().map((a) => [a.idempotencyKey, a.reference]));
    expect([...accepted.keys()].sort()).toEqual(ids.flatMap((id) => [`${id}:direct`, `${id}:grand`]).sort());
    const paid = await t.db
      .selectFrom('referral_payouts')
      .select(['purchase_id', 'level', 'status', 'reference'])
      .where('purchase_id', 'in', ids)
      .execute();
    expect(paid).toHaveLength(ids.length * 2);
    for (const level of paid) {
      expect([level.status, level.reference]).toEqual(['paid', accepted.get(`${level.purchase_id}:${level.level}`)]);
    }
    expect(await doublePayouts(t.db)).toBe(0);
    const report = await readInvariants(t.db);
    expect(report.ledgerTotals).toEqual({ EUR: 0 });
    expect(report).toMatchObject({ paidWithoutCredit: 0, payoutsOverFee: 0 });

    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });
});
