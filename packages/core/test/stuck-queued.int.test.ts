import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import {
  claimStuckQueued,
  countStuckQueued,
  DEFAULT_STUCK_QUEUED_AFTER_SECONDS,
  payoutSummary,
  STUCK_SWEEP_LOCK,
} from '@referrals/core';
import { confirmedPurchase, seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

// This database has no pg-boss schema: no job is live anywhere, and a sweep has nowhere to enqueue.
// The worker's stuck-sweep tests cover the job table with a real pg-boss.
const t = useTestDatabase();

/** A queued purchase whose queueing, publishing and last event all lie `ago` in the past. */
async function quietFor(ago: string, options: { published?: boolean } = {}): Promise<string> {
  const chain = await seedReferralChain(t.db);
  const { id } = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
  await sql`update purchases set referral_payout_queued_at = now() - ${ago}::interval where id = ${id}`.execute(t.db);
  await sql`update referral_payout_events set at = now() - ${ago}::interval where purchase_id = ${id}`.execute(t.db);
  if (options.published !== false)
    await sql`update outbox set published_at = now() - ${ago}::interval where aggregate_id = ${id}`.execute(t.db);
  return id;
}

describe('stuck queued purchases', () => {
  it('counts queued purchases with no sign of life past the threshold, and shows them in the summary', async () => {
    expect(await countStuckQueued(t.db, 600)).toBe(0);
    await quietFor('1 hour');
    await quietFor('2 hours');
    await quietFor('2 hours', { published: false });
    await quietFor('1 minute');
    expect(await countStuckQueued(t.db, 600)).toBe(2);
    expect(await countStuckQueued(t.db, 5400)).toBe(1);
    expect((await payoutSummary(t.db, { stuckQueuedAfterSeconds: 600 })).stuckQueued).toEqual({
      count: 2,
      afterSeconds: 600,
    });
    expect((await payoutSummary(t.db)).stuckQueued).toEqual({
      count: await countStuckQueued(t.db, DEFAULT_STUCK_QUEUED_AFTER_SECONDS),
      afterSeconds: DEFAULT_STUCK_QUEUED_AFTER_SECONDS,
    });
  });

  it('claims nothing without a job table, and nothing at all while another sweep holds the lock', async () => {
    await quietFor('3 hours');
    const claimed = await t.db
      .transaction()
      .execute((trx) => claimStuckQueued(trx, { thresholdSeconds: 600, limit: 10 }));
    expect(claimed).toEqual([]);

    const other = await t.db.connection().execute(async (conn) => {
      await sql`begin`.execute(conn);
      await sql`select pg_advisory_xact_lock(${STUCK_SWEEP_LOCK})`.execute(conn);
      try {
        return await t.db.transaction().execute((trx) => claimStuckQueued(trx, { thresholdSeconds: 600, limit: 10 }));
      } finally {
        await sql`rollback`.execute(conn);
      }
    });
    expect(other).toBeNull();
  });
});
