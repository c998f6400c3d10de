import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import pino from 'pino';
import { getReferralPayoutStatus, httpGateway, processReferralPayouts } from '@referrals/core';
import { type FakeTreasury, forgetPayoutGateway, readInvariants, startFakeTreasury, waitFor } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { type RunningWorker, startWorker } from '../src/worker.ts';
import { doublePayouts, jobsPerPurchase, queuedPurchases, waitForStatus, workerConfig } from './support.ts';

const t = useTestDatabase();

/** A pino logger whose JSON lines the test can read. */
function capturingLogger(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

describe('worker with the ledger gateway', () => {
  let worker: RunningWorker;
  const log = capturingLogger();

  beforeAll(async () => {
    // Each describe runs a deployment of its own, with its own gateway.
    await forgetPayoutGateway(t.db);
    worker = await startWorker({ config: workerConfig(t.url, { WORKER_CONCURRENCY: '4' }), logger: log.logger });
  });
  afterAll(async () => worker?.stop(5_000));

  it('drains a backlog of hundreds of queued purchases, each paid once', async () => {
    const ids = await queuedPurchases(t.db, 300);
    await waitForStatus(t.db, ids, 'completed');

    expect(await jobsPerPurchase(t.db, ids)).toEqual({ jobs: 300, distinct: 300 });
    expect(await doublePayouts(t.db)).toBe(0);
    const published = await t.db
      .selectFrom('outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('published_at', 'is', null)
      .executeTakeFirstOrThrow();
    expect(Number(published.n)).toBe(0);
    const report = await readInvariants(t.db);
    expect(report.ledgerTotals).toEqual({ EUR: 0 });
    expect(report.payoutsOverFee).toBe(0);

    // Every payout log line names its purchase and its job.
    const settled = log.lines.filter((l) => l.msg === 'referral payout settled');
    expect(settled.length).toBe(300);
    expect(settled.every((l) => typeof l.purchaseId === 'string' && typeof l.jobId === 'string')).toBe(true);
  });

  it('does not enqueue a purchase twice when its outbox row is replayed', async () => {
    const [id] = await queuedPurchases(t.db, 1);
    await waitForStatus(t.db, [id!], 'completed');
    await t.db.updateTable('outbox').set({ published_at: null }).where('aggregate_id', '=', id!).execute();
    await worker.relay.drain();
    expect(await jobsPerPurchase(t.db, [id!])).toEqual({ jobs: 1, distinct: 1 });
    expect((await getReferralPayoutStatus(t.db, id!)).events.filter((e) => e.to === 'completed')).toHaveLength(1);
  });
});

describe('worker with the http gateway', () => {
  let treasury: FakeTreasury;
  let worker: RunningWorker;

  beforeAll(async () => {
    treasury = await startFakeTreasury();
    await forgetPayoutGateway(t.db);
    worker = await startWorker({
      config: workerConfig(t.url, {
        PAYOUT_GATEWAY: 'http',
        TREASURY_URL: treasury.url,
        TREASURY_TIMEOUT_MS: '1000',
        PAYOUT_RETRY_LIMIT: '2',
      }),
      logger: pino({ level: 'silent' }),
    });
  });
  afterAll(async () => {
    await worker?.stop(5_000);
    await treasury?.close();
  });

  it('completes after transient treasury failures with one accepted transfer per level', async () => {
    treasury.setMode({ kind: 'fail', times: 3 });
    const ids = await queuedPurchases(t.db, 2);
    await waitForStatus(t.db, ids, 'completed');

    for (const id of ids) {
      const accepted = treasury.accepted().filter((a) => a.idempotencyKey.startsWith(id));
      expect(accepted.map((a) => [a.idempotencyKey, a.amount]).sort()).toEqual([
        [`${id}:direct`, 1000],
        [`${id}:grand`, 500],
      ]);
      const status = await getReferralPayoutStatus(t.db, id);
      expect(
        status.payouts.every(
          (p) =>
            p.status === 'paid' &&
            p.reference === treasury.accepted().find((a) => a.idempotencyKey === `${id}:${p.level}`)?.reference,
        ),
      ).toBe(true);
    }
    expect(await doublePayouts(t.db)).toBe(0);
  });

  it('pays once when the treasury accepts a transfer but the response is lost', async () => {
    treasury.setMode({ kind: 'drop-response', times: 2 });
    const [id] = await queuedPurchases(t.db, 1);
    await waitForStatus(t.db, [id!], 'completed');
    expect(treasury.requestsFor(`${id}:direct`) + treasury.requestsFor(`${id}:grand`)).toBeGreaterThan(2);
    expect(treasury.accepted().filter((a) => a.idempotencyKey.startsWith(id!))).toHaveLength(2);
    expect((await readInvariants(t.db)).doubleCredits).toBe(0);
  });

  it('ends failed with its attempts and last error when retries are spent, and a repair pays only what is unpaid', async () => {
    treasury.setMode({ kind: 'fail', times: Infinity, only: (key) => key.endsWith(':grand') });
    const [id] = await queuedPurchases(t.db, 1);
    await waitForStatus(t.db, [id!], 'failed');

    const failed = await getReferralPayoutStatus(t.db, id!);
    expect(failed.attempts).toBe(3); // the first attempt and PAYOUT_RETRY_LIMIT=2 retries
    expect(failed.lastError).toMatch(/treasury answered 500/);
    expect(failed.payouts.map((p) => [p.level, p.status])).toEqual([
      ['direct', 'paid'],
      ['grand', 'failed'],
    ]);
    expect(treasury.requestsFor(`${id}:direct`)).toBe(1);

    treasury.setMode({ kind: 'succeed' });
    const outcome = await processReferralPayouts(
      {
        db: t.db,
        gateway: httpGateway({ treasuryUrl: treasury.url, timeoutMs: 1000 }),
        minPayout: 1,
        logger: pino({ level: 'silent' }),
      },
      id!,
      { actor: 'cli' },
    );
    expect(outcome.status).toBe('completed');
    expect(outcome.paid.map((p) => p.level)).toEqual(['grand']);
    expect(treasury.requestsFor(`${id}:direct`)).toBe(1);
    expect(treasury.accepted().filter((a) => a.idempotencyKey.startsWith(id!))).toHaveLength(2);
    expect((await readInvariants(t.db)).ledgerTotals).toEqual({ EUR: 0 });
  });
});

describe('outbox relay wake-ups', () => {
  it('listens again after its connection is killed, without waiting for the poll', async () => {
    // A poll far longer than the test: only NOTIFY can move these purchases.
    await forgetPayoutGateway(t.db);
    const worker = await startWorker({
      config: workerConfig(t.url, { OUTBOX_POLL_INTERVAL_MS: '600000' }),
      logger: pino({ level: 'silent' }),
    });
    const relayBackends = async () =>
      (
        await sql<{ pid: number }>`select pid from pg_stat_activity
          where datname = current_database() and application_name = 'referral-payouts-relay'`.execute(t.db)
      ).rows.map((r) => r.pid);
    try {
      const [before] = await waitFor(async () => ((await relayBackends()).length === 1 ? relayBackends() : undefined), {
        what: 'the relay listener',
      });
      await sql`select pg_terminate_backend(${before})`.execute(t.db);
      await waitFor(
        async () => {
          const pids = await relayBackends();
          return pids.length === 1 && pids[0] !== before;
        },
        { what: 'the relay listener to reconnect' },
      );

      const ids = await queuedPurchases(t.db, 3);
      await waitForStatus(t.db, ids, 'completed', 10_000);
    } finally {
      await worker.stop(5_000);
    }
  });
});
