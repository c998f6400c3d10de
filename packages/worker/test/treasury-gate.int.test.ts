import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { getReferralPayoutStatus, pausePayouts, readTreasuryGate, resumePayouts } from '@referrals/core';
import { type FakeTreasury, readInvariants, startFakeTreasury, waitFor } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import {
  doublePayouts,
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

afterEach(async () => {
  await killAll(processes);
  processes = [];
  await treasury?.close();
  treasury = undefined;
  await sql`update treasury_gate set state = 'closed', consecutive_failures = 0, probe_interval_ms = null, next_probe_at = null,
    probe_owner = null, probe_until = null, paused_by = null, paused_reason = null`.execute(t.db);
});

async function startWorkers(count: number, overrides: Record<string, string> = {}): Promise<WorkerProcess[]> {
  treasury ??= await startFakeTreasury();
  const env = workerEnv(t.url, { PAYOUT_GATEWAY: 'http', TREASURY_URL: treasury.url, LOG_LEVEL: 'info', ...overrides });
  const started = Array.from({ length: count }, () => spawnWorker(env));
  processes.push(...started);
  await Promise.all(
    started.map((w) =>
      waitFor(() => w.output().includes('worker started'), { what: 'worker start', timeoutMs: 30_000 }),
    ),
  );
  return started;
}

const gateEvents = () => t.db.selectFrom('treasury_gate_events').selectAll().orderBy('id').execute();
const attemptsOf = async (ids: string[]) =>
  new Map(
    (
      await t.db.selectFrom('purchases').select(['id', 'referral_payout_attempts']).where('id', 'in', ids).execute()
    ).map((r) => [r.id, r.referral_payout_attempts]),
  );
const probesSoFar = async () => (await gateEvents()).filter((e) => e.to_state === 'half_open').length;
/** Failed attempts recorded against the purchases (each one an event carrying its error). */
const recordedErrors = async (ids: string[]) =>
  (
    await sql<{
      n: number;
    }>`select count(*)::int as n from referral_payout_events where purchase_id = any(${ids}) and error is not null`.execute(
      t.db,
    )
  ).rows[0]!.n;
const lines = (workers: WorkerProcess[], text: string) =>
  workers.reduce(
    (n, w) =>
      n +
      w
        .output()
        .split('\n')
        .filter((l) => l.includes(text)).length,
    0,
  );

describe('the circuit breaker across worker processes', () => {
  it('opens for both workers, probes alone while open, spends no attempt, and closes when the treasury answers', async () => {
    treasury = await startFakeTreasury({ kind: 'fail', times: Number.POSITIVE_INFINITY });
    const workers = await startWorkers(2);
    const ids = await queuedPurchases(t.db, 30);

    const failedProbes = async () =>
      (await gateEvents()).filter((e) => e.from_state === 'half_open' && e.to_state === 'open').length;
    // A second after opening the first probe fails; by then every transfer sent before the opening
    // has been answered (the treasury fails at once) and recorded.
    await waitFor(async () => (await failedProbes()) >= 1, {
      what: 'the breaker to open and a probe to fail',
      timeoutMs: 30_000,
    });
    const attemptsAtOpen = await attemptsOf(ids);
    const errorsAtOpen = await recordedErrors(ids);
    // From here on only probes reach the treasury: one purchase (two transfers) per probe.
    const requestsAtOpen = treasury.requestCount;
    const probesAtOpen = await probesSoFar();
    await waitFor(async () => (await failedProbes()) >= 2, { what: 'another failed probe', timeoutMs: 30_000 });
    expect(treasury.requestCount - requestsAtOpen).toBeLessThanOrEqual(2 * ((await probesSoFar()) - probesAtOpen + 1));
    expect(await readTreasuryGate(t.db)).toMatchObject({
      state: expect.stringMatching(/^(open|half_open)$/),
      lastError: expect.stringContaining('500'),
    });
    expect((await statusCounts(t.db, ids)).failed).toBeUndefined();

    treasury.setMode({ kind: 'succeed' });
    await waitForStatus(t.db, ids, 'completed', 60_000);
    expect((await readTreasuryGate(t.db)).state).toBe('closed');

    // No purchase was charged an attempt while the breaker was open: each has the attempts it had
    // then plus the one that paid it, and no failure was recorded since.
    const attemptsAfter = await attemptsOf(ids);
    for (const id of ids) expect(attemptsAfter.get(id)).toBe(attemptsAtOpen.get(id)! + 1);
    expect(await recordedErrors(ids)).toBe(errorsAtOpen);

    // Each transition is logged once, by the process that made it.
    expect(lines(workers, 'treasury circuit breaker opened')).toBe(1);
    expect(lines(workers, 'treasury circuit breaker closed')).toBe(1);
    expect(treasury.accepted()).toHaveLength(2 * ids.length);
    expect(await doublePayouts(t.db)).toBe(0);
  });
});

describe('a refusal from the treasury', () => {
  it('fails the purchase at once, naming the level, while the other level pays', async () => {
    await startWorkers(1);
    treasury!.setMode({
      kind: 'refuse',
      when: (transfer) => transfer.idempotencyKey.endsWith(':grand'),
      status: 422,
      code: 'account_closed',
      message: () => 'beneficiary account closed',
    });
    const [id] = await queuedPurchases(t.db, 1);
    await waitForStatus(t.db, [id!], 'failed', 30_000);

    const status = await getReferralPayoutStatus(t.db, id!);
    expect(status).toMatchObject({
      status: 'failed',
      attempts: 1,
      lastError: expect.stringMatching(/^grand refused: treasury answered 422: .*beneficiary account closed/),
    });
    expect(status.payouts.map((p) => [p.level, p.status])).toEqual([
      ['direct', 'paid'],
      ['grand', 'failed'],
    ]);
    expect(treasury!.requestsFor(`${id}:grand`)).toBe(1);
    expect((await readTreasuryGate(t.db)).state).toBe('closed');
    // Not retried: the job is settled in pg-boss (dead-lettered) with the purchase as it was.
    await waitFor(
      async () => {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pgboss.job
          where name = 'referral-payouts' and data->>'purchaseId' = ${id!} and state in ('created', 'retry', 'active')`.execute(
          t.db,
        );
        return rows[0]!.n === 0;
      },
      { what: 'the job to be settled', timeoutMs: 15_000 },
    );
    expect((await getReferralPayoutStatus(t.db, id!)).attempts).toBe(1);
    expect(treasury!.requestsFor(`${id}:grand`)).toBe(1);
  });
});

describe('pause and resume', () => {
  it('holds every payout in hand without a transfer or an attempt, and drains when resumed', async () => {
    await pausePayouts(t.db, { actor: 'cli', operator: 'test', reason: 'incident drill' });
    await startWorkers(1);
    const ids = await queuedPurchases(t.db, 12);
    // The jobs reach the worker and stay in hand while paused.
    await waitFor(
      async () => {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pgboss.job
          where name = 'referral-payouts' and state = 'active' and data->>'purchaseId' = any(${ids})`.execute(t.db);
        return rows[0]!.n === ids.length;
      },
      { what: 'the worker to hold every job', timeoutMs: 30_000 },
    );
    expect(treasury!.requestCount).toBe(0);
    expect(await statusCounts(t.db, ids)).toEqual({ queued: ids.length });
    expect([...(await attemptsOf(ids)).values()].every((a) => a === 0)).toBe(true);

    await resumePayouts(t.db, { actor: 'cli', operator: 'test' });
    await waitForStatus(t.db, ids, 'completed', 30_000);
    expect([...(await attemptsOf(ids)).values()].every((a) => a === 1)).toBe(true);
    expect(treasury!.accepted()).toHaveLength(2 * ids.length);
    const invariants = await readInvariants(t.db);
    expect(invariants.doubleCredits).toBe(0);
  });
});

describe('transfers in flight', () => {
  it('keeps far more transfers on the wire than slots or database connections', async () => {
    treasury = await startFakeTreasury({ kind: 'slow', delayMs: 1500 });
    await startWorkers(1, { TREASURY_TIMEOUT_MS: '10000' });
    const ids = await queuedPurchases(t.db, 150);
    let peakInFlight = 0;
    let peakConnections = 0;
    await waitFor(
      async () => {
        peakInFlight = Math.max(peakInFlight, treasury!.inFlight);
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and application_name = 'referral-payouts-worker'`.execute(t.db);
        peakConnections = Math.max(peakConnections, rows[0]!.n);
        return (await statusCounts(t.db, ids)).completed === ids.length;
      },
      { what: '150 purchases paid through a slow treasury', timeoutMs: 90_000, intervalMs: 50 },
    );
    // One job per slot would keep at most WORKER_CONCURRENCY (8) transfers on the wire; the worker's
    // two pools hold at most 12 connections each.
    expect(peakInFlight).toBeGreaterThan(40);
    expect(peakInFlight).toBeGreaterThan(2 * peakConnections);
    expect(peakConnections).toBeLessThanOrEqual(24);
    expect(treasury.accepted()).toHaveLength(2 * ids.length);
  });
});
