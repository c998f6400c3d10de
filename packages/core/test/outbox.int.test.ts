import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  createDatabase,
  OUTBOX_CHANNEL,
  prunePublishedOutbox,
  publishedPastRetention,
  wakeRelays,
} from '@referrals/core';
import { confirmedPurchase, seedReferralChain, waitFor } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();

describe('prunePublishedOutbox', () => {
  it('deletes published rows past the retention, in batches, and never an unpublished one', async () => {
    const chain = await seedReferralChain(t.db);
    const purchases = [];
    for (let i = 0; i < 7; i++) purchases.push(await confirmedPurchase(t.db, chain.buyer.id, chain.content.id));
    const [oldA, oldB, oldC, recent, unpublishedOld] = purchases.map((p) => p.id);
    await sql`update outbox set published_at = now() - interval '8 days' where aggregate_id in (${oldA}, ${oldB}, ${oldC})`.execute(
      t.db,
    );
    await sql`update outbox set published_at = now() - interval '6 days' where aggregate_id = ${recent}`.execute(t.db);
    await sql`update outbox set created_at = now() - interval '30 days' where aggregate_id = ${unpublishedOld}`.execute(
      t.db,
    );

    expect(await prunePublishedOutbox(t.db, 7, 2)).toBe(3);

    const left = await t.db.selectFrom('outbox').select('aggregate_id').execute();
    expect(left.map((r) => r.aggregate_id).sort()).toEqual(
      purchases
        .slice(3)
        .map((p) => p.id)
        .sort(),
    );
    expect(await prunePublishedOutbox(t.db, 7)).toBe(0);
  });

  it('finds a batch through the published_at index, not by scanning the outbox', async () => {
    // Enough published history that a sequential scan would be the planner's choice without it.
    await sql`
      insert into outbox (topic, aggregate_id, payload, created_at, published_at)
      select 'referral_payout.requested', gen_random_uuid(), '{}'::jsonb, now() - make_interval(days => 30 - g / 1000),
             now() - make_interval(days => 30 - g / 1000)
        from generate_series(1, 20000) g`.execute(t.db);
    await sql`analyze outbox`.execute(t.db);

    const plan = await publishedPastRetention(t.db, 7, 5000).explain();
    const text = plan.map((row) => Object.values(row).join(' ')).join('\n');
    expect(text).toContain('outbox_published_at_idx');
    expect(text).not.toMatch(/Seq Scan/);
  });
});

describe('wakeRelays', () => {
  it('keeps one NOTIFY in flight: a burst of wake-ups costs two, and a later one sends again', async () => {
    // A pool of its own: its first wake-up is this test's, not that of an earlier confirm in this file.
    const db = createDatabase(t.url, { max: 2 });
    const listener = new pg.Client({ connectionString: t.url });
    await listener.connect();
    const payloads: string[] = [];
    listener.on('notification', (n) => payloads.push(n.payload ?? ''));
    await listener.query(`listen ${OUTBOX_CHANNEL}`);
    // Notifications arrive in commit order: once this one is in, every earlier one is too.
    const fence = async (name: string) => {
      await sql`select pg_notify(${OUTBOX_CHANNEL}, ${name})`.execute(db);
      await waitFor(() => payloads.includes(name), { what: `notification ${name}` });
    };
    try {
      // The first sends at once; the other 49 come while it is on its way and share one more, sent
      // after it (a row committed meanwhile may have missed the first).
      await Promise.all(Array.from({ length: 50 }, () => wakeRelays(db)));
      await fence('after the burst');
      expect(payloads).toEqual(['', '', 'after the burst']);

      // With nothing in flight a wake-up is a NOTIFY of its own.
      await wakeRelays(db);
      await fence('after one more');
      expect(payloads).toEqual(['', '', 'after the burst', '', 'after one more']);
    } finally {
      await listener.end();
      await db.destroy();
    }
  });
});
