import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { claimUnpublished, markPublished, outboxBacklog, REFERRAL_PAYOUT_TOPIC } from '@referrals/core';
import { confirmedPurchase, seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();

// Each test reads the whole outbox.
beforeEach(async () => {
  await sql`delete from outbox`.execute(t.db);
});

describe('the relay queries', () => {
  it('claims the oldest unpublished rows, locked so that a concurrent claim skips them', async () => {
    const chain = await seedReferralChain(t.db);
    const purchases = [];
    for (let i = 0; i < 4; i++) purchases.push(await confirmedPurchase(t.db, chain.buyer.id, chain.content.id));
    const rows = await t.db.selectFrom('outbox').selectAll().orderBy('id').execute();
    expect(rows.map((r) => r.aggregate_id)).toEqual(purchases.map((p) => p.id));
    await sql`update outbox set published_at = now() where id = ${rows[0]!.id}`.execute(t.db);

    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let claimedFirst!: () => void;
    const firstClaimed = new Promise<void>((resolve) => {
      claimedFirst = resolve;
    });
    const first = t.db.transaction().execute(async (trx) => {
      const claimed = await claimUnpublished(trx, 2);
      claimedFirst();
      await held;
      return claimed;
    });
    await firstClaimed;
    // While the first claim is open, a second one neither waits for it nor sees its rows.
    const second = await t.db.transaction().execute(async (trx) => {
      await sql`set local lock_timeout = '2s'`.execute(trx);
      return claimUnpublished(trx, 10);
    });
    release();
    const claimed = await first;

    expect(claimed).toEqual(
      rows.slice(1, 3).map((r) => ({
        id: r.id,
        topic: REFERRAL_PAYOUT_TOPIC,
        aggregateId: r.aggregate_id,
        payload: { purchaseId: r.aggregate_id },
        createdAt: r.created_at,
      })),
    );
    expect(claimed[0]!.createdAt).toBeInstanceOf(Date);
    expect(second.map((r) => r.id)).toEqual([rows[3]!.id]);
  });

  it('marks only the given rows published, and an empty batch is no statement at all', async () => {
    const chain = await seedReferralChain(t.db);
    for (let i = 0; i < 3; i++) await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    const ids = (await t.db.selectFrom('outbox').select('id').orderBy('id').execute()).map((r) => r.id);

    await t.db.transaction().execute(async (trx) => {
      await markPublished(trx, []);
      await markPublished(trx, [ids[0]!, ids[2]!]);
    });
    const rows = await t.db.selectFrom('outbox').select(['id', 'published_at']).orderBy('id').execute();
    expect(rows.map((r) => [r.id, r.published_at instanceof Date])).toEqual([
      [ids[0], true],
      [ids[1], false],
      [ids[2], true],
    ]);
    const claimed = await t.db.transaction().execute((trx) => claimUnpublished(trx, 10));
    expect(claimed.map((r) => r.id)).toEqual([ids[1]]);
  });

  it('reports the backlog: unpublished rows and the age of the oldest, or null when there is none', async () => {
    expect(await outboxBacklog(t.db)).toEqual({ unpublished: 0, oldestAgeSeconds: null });
    const chain = await seedReferralChain(t.db);
    const [a, b, c] = [
      await confirmedPurchase(t.db, chain.buyer.id, chain.content.id),
      await confirmedPurchase(t.db, chain.buyer.id, chain.content.id),
      await confirmedPurchase(t.db, chain.buyer.id, chain.content.id),
    ];
    await sql`update outbox set created_at = now() - interval '90 seconds' where aggregate_id = ${a.id}`.execute(t.db);
    await sql`update outbox set created_at = now() - interval '1 hour', published_at = now()
               where aggregate_id = ${b.id}`.execute(t.db);
    const backlog = await outboxBacklog(t.db);
    expect(backlog.unpublished).toBe(2);
    expect(typeof backlog.oldestAgeSeconds).toBe('number');
    expect(backlog.oldestAgeSeconds).toBeGreaterThanOrEqual(90);
    expect(backlog.oldestAgeSeconds).toBeLessThan(3600);
    await sql`update outbox set published_at = now() where aggregate_id in (${a.id}, ${c.id})`.execute(t.db);
    expect(await outboxBacklog(t.db)).toEqual({ unpublished: 0, oldestAgeSeconds: null });
  });
});
