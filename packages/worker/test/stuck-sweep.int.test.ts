import { sql } from 'kysely';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import {
  countStuckQueued,
  createDatabase,
  getReferralPayoutStatus,
  payoutSummary,
  REFERRAL_PAYOUT_QUEUE,
  STUCK_SWEEP_LOCK,
} from '@referrals/core';
import { waitFor } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { startStuckSweep } from '../src/stuck-sweep.ts';
import { type RunningWorker, startWorker } from '../src/worker.ts';
import { doublePayouts, queuedPurchases, waitForStatus, workerConfig } from './support.ts';

const t = useTestDatabase();
const silent = pino({ level: 'silent' });
// Short enough to wait for, long enough that the purchases are not stuck the moment they queue.
const THRESHOLD = 1;
const config = () =>
  workerConfig(t.url, {
    STUCK_QUEUED_AFTER_SECONDS: String(THRESHOLD),
    // Each worker sweeps once when it starts; the test decides when the sweeps that matter run.
    STUCK_QUEUED_SWEEP_INTERVAL_SECONDS: '3600',
  });

let boss: PgBoss | undefined;
let worker: RunningWorker | undefined;
afterAll(async () => {
  await worker?.stop(5_000);
  await boss?.stop({ graceful: false, close: true });
});

/** Live (created, retry, active) and all jobs of each purchase on the payout queue. */
async function jobsOf(ids: string[]): Promise<Record<string, { live: number; all: number }>> {
  const { rows } = await sql<{ purchase_id: string; live: number; all: number }>`
    select data->>'purchaseId' as purchase_id,
           count(*) filter (where state in ('created', 'retry', 'active'))::int as live,
           count(*)::int as all
      from pgboss.job where name = ${REFERRAL_PAYOUT_QUEUE} and data->>'purchaseId' = any(${ids})
     group by 1`.execute(t.db);
  return Object.fromEntries(
    ids.map((id) => {
      const row = rows.find((r) => r.purchase_id === id);
      return [id, { live: row?.live ?? 0, all: row?.all ?? 0 }];
    }),
  );
}

/** As if the relay had published the purchase's outbox row and its job were gone since. */
async function relayedWithoutJob(ids: string[]): Promise<void> {
  await t.db.updateTable('outbox').set({ published_at: sql`now()` }).where('aggregate_id', 'in', ids).execute();
}

/**
 * Holds the sweep lock from another session while a sweep runs (it must enqueue nothing), then
 * makes `id` stuck again by completing its job, and lets the sweep through.
 */
async function requeuedAfterRelease(sweep: { sweep(): Promise<number> }, id: string): Promise<void> {
  const holder = new pg.Client({ connectionString: t.url });
  await holder.connect();
  try {
    await holder.query('select pg_advisory_lock($1)', [STUCK_SWEEP_LOCK]);
    await sql`update pgboss.job set state = 'completed', completed_on = now() where data->>'purchaseId' = ${id}`.execute(
      t.db,
    );
    await waitFor(async () => (await countStuckQueued(t.db, THRESHOLD)) === 1, { what: `${id} stuck again` });
    expect(await sweep.sweep()).toBe(0);
    expect(await countStuckQueued(t.db, THRESHOLD)).toBe(1);
  } finally {
    await holder.end();
  }
}

const requeueEvents = async (id: string) =>
  (await getReferralPayoutStatus(t.db, id)).events.filter((e) => e.note?.startsWith('re-enqueued'));

describe('the stuck-queued sweep', () => {
  it('re-enqueues queued purchases whose job is gone, once however many sweep, and leaves live jobs alone', async () => {
    // A first worker installs pg-boss and the queues, and is stopped: no worker runs until the end.
    await (await startWorker({ config: config(), logger: silent })).stop(5_000);
    boss = new PgBoss({ connectionString: t.url, supervise: false, schedule: false });
    await boss.start();

    const [deleted, spent, live, unpublished] = await queuedPurchases(t.db, 4);
    // deleted: relayed, then its job deleted. spent: its job completed while the purchase stayed queued.
    await relayedWithoutJob([deleted!, spent!, live!]);
    await boss.insert(REFERRAL_PAYOUT_QUEUE, [{ id: spent!, data: { purchaseId: spent } }]);
    await sql`update pgboss.job set state = 'completed', completed_on = now() where id = ${spent}`.execute(t.db);
    // live: its job waits for a retry an hour from now. unpublished: the relay has not run yet.
    await boss.insert(REFERRAL_PAYOUT_QUEUE, [
      { id: live!, data: { purchaseId: live }, startAfter: new Date(Date.now() + 3600_000) },
    ]);

    await waitFor(async () => (await countStuckQueued(t.db, THRESHOLD)) === 2, {
      what: 'two purchases stuck for longer than the threshold',
    });
    const summary = await payoutSummary(t.db, { stuckQueuedAfterSeconds: THRESHOLD });
    expect(summary.stuckQueued).toEqual({ count: 2, afterSeconds: THRESHOLD });
    // The default threshold (5 min) is not reached yet.
    expect((await payoutSummary(t.db)).stuckQueued).toEqual({ count: 0, afterSeconds: 300 });

    // Two sweeps at once, on separate pools as two workers would be: each stuck purchase gets one job.
    const pools = [createDatabase(t.url, { max: 2 }), createDatabase(t.url, { max: 2 })];
    let requeued = 0;
    try {
      const sweeps = pools.map((db) =>
        startStuckSweep({
          db,
          boss: boss!,
          logger: silent,
          thresholdSeconds: THRESHOLD,
          intervalSeconds: 3600,
          onRequeued: (n) => {
            requeued += n;
          },
        }),
      );
      await Promise.all(sweeps.map((s) => s.sweep()));
      expect(requeued).toBe(2);
      // A sweep that finds another one running skips its turn: nothing is enqueued meanwhile.
      await requeuedAfterRelease(sweeps[0]!, deleted!);
      await Promise.all([...sweeps.map((s) => s.sweep()), ...sweeps.map((s) => s.sweep())]);
      await Promise.all(sweeps.map((s) => s.stop()));
    } finally {
      await Promise.all(pools.map((db) => db.destroy()));
    }
    expect(requeued).toBe(3);
    expect(await jobsOf([deleted!, spent!, live!, unpublished!])).toEqual({
      [deleted!]: { live: 1, all: 2 },
      [spent!]: { live: 1, all: 2 },
      [live!]: { live: 1, all: 1 },
      [unpublished!]: { live: 0, all: 0 },
    });
    const note = `re-enqueued: no live payout job for more than ${THRESHOLD} s`;
    expect(await requeueEvents(deleted!)).toMatchObject([
      { from: 'queued', to: 'queued', actor: 'worker', note },
      { from: 'queued', to: 'queued', actor: 'worker', note },
    ]);
    expect(await requeueEvents(live!)).toEqual([]);
    expect(await countStuckQueued(t.db, THRESHOLD)).toBe(0);

    // One more loses its job; the worker's own sweep finds it when it starts, and the worker pays
    // every purchase but the one whose job waits an hour, each exactly once.
    const [lost] = await queuedPurchases(t.db, 1);
    await relayedWithoutJob([lost!]);
    await waitFor(async () => (await countStuckQueued(t.db, THRESHOLD)) === 1, { what: 'the lost purchase stuck' });
    worker = await startWorker({ config: config(), logger: silent });
    await waitForStatus(t.db, [deleted!, spent!, unpublished!, lost!], 'completed');
    expect(await worker.metrics.requeued.get()).toMatchObject({ values: [{ value: 1 }] });
    expect(await requeueEvents(lost!)).toHaveLength(1);
    expect((await getReferralPayoutStatus(t.db, live!)).status).toBe('queued');
    expect((await jobsOf([live!]))[live!]).toEqual({ live: 1, all: 1 });
    for (const id of [deleted!, spent!, unpublished!, lost!]) {
      const status = await getReferralPayoutStatus(t.db, id);
      expect(status.payouts.map((p) => [p.level, p.status])).toEqual([
        ['direct', 'paid'],
        ['grand', 'paid'],
      ]);
      expect(status.events.filter((e) => e.to === 'completed')).toHaveLength(1);
    }
    expect(await doublePayouts(t.db)).toBe(0);
  });
});
