import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import {
  countByPayoutStatus,
  createPurchase,
  getReferralPayoutStatus,
  ledgerGateway,
  listFailedPayouts,
  markReferralPayoutFailed,
  payoutSummary,
  processReferralPayouts,
} from '@referrals/core';
import { confirmedPurchase, type ReferralChain, seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });

let chain: ReferralChain;
/** Failed purchases, newest failure first: 10, 20, 30 minutes and 2 days ago. */
let failed: string[];
let completed: string;
let queued: string;

beforeAll(async () => {
  chain = await seedReferralChain(t.db, { price: 10_000 });
  const confirmed = async () => (await confirmedPurchase(t.db, chain.buyer.id, chain.content.id)).id;
  failed = [];
  for (const [i, ago] of ['10 minutes', '20 minutes', '30 minutes', '2 days'].entries()) {
    const id = await confirmed();
    const outcome = await markReferralPayoutFailed(t.db, id, 'worker', `treasury said no ${i}`);
    expect(outcome).toEqual({ status: 'failed', changed: true, lastError: `treasury said no ${i}` });
    await sql`update purchases set referral_payout_failed_at = now() - ${ago}::interval where id = ${id}`.execute(t.db);
    failed.push(id);
  }
  completed = await confirmed();
  await processReferralPayouts({ db: t.db, gateway: ledgerGateway, minPayout: 1, logger }, completed, {
    actor: 'worker',
  });
  queued = await confirmed();
  await sql`update purchases set referral_payout_queued_at = now() - interval '2 minutes' where id = ${queued}`.execute(
    t.db,
  );
  const free = await seedReferralChain(t.db, { price: 0 });
  await confirmedPurchase(t.db, free.buyer.id, free.content.id);
  await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id });
});

describe('listFailedPayouts', () => {
  it('pages through failed purchases newest failure first, every field from the purchase', async () => {
    const first = await listFailedPayouts(t.db, { limit: 2 });
    expect(first.total).toBe(4);
    expect(first.items.map((i) => i.purchaseId)).toEqual(failed.slice(0, 2));
    expect(first.nextCursor).toEqual(expect.any(String));
    const row = await t.db.selectFrom('purchases').selectAll().where('id', '=', failed[0]!).executeTakeFirstOrThrow();
    expect(first.items[0]).toEqual({
      purchaseId: failed[0],
      buyerId: chain.buyer.id,
      contentId: chain.content.id,
      price: 10_000,
      currency: 'EUR',
      attempts: 0,
      lastError: 'treasury said no 0',
      failedAt: row.referral_payout_failed_at!.toISOString(),
    });

    const second = await listFailedPayouts(t.db, { limit: 2, cursor: first.nextCursor! });
    expect(second.items.map((i) => i.purchaseId)).toEqual(failed.slice(2, 4));
    expect([second.nextCursor, second.total]).toEqual([null, 4]);
  });

  it('walks oldest first on request, and a page that holds the rest has no next cursor', async () => {
    const oldest = await listFailedPayouts(t.db, { limit: 3, order: 'oldest' });
    expect(oldest.items.map((i) => i.purchaseId)).toEqual([...failed].reverse().slice(0, 3));
    const rest = await listFailedPayouts(t.db, { limit: 3, order: 'oldest', cursor: oldest.nextCursor! });
    expect(rest.items.map((i) => i.purchaseId)).toEqual([failed[0]]);
    expect(rest.nextCursor).toBeNull();

    const exact = await listFailedPayouts(t.db, { limit: 4 });
    expect(exact.items).toHaveLength(4);
    expect(exact.nextCursor).toBeNull();
  });

  it('keeps the page size between 1 and the maximum', async () => {
    expect((await listFailedPayouts(t.db, { limit: 0 })).items.map((i) => i.purchaseId)).toEqual([failed[0]]);
    expect((await listFailedPayouts(t.db, { limit: -5 })).items).toHaveLength(1);
    expect((await listFailedPayouts(t.db, { limit: 10_000 })).items).toHaveLength(4);
  });
});

describe('payout summary', () => {
  it('counts every status, ages the oldest queued purchase and counts recent failures', async () => {
    expect(await countByPayoutStatus(t.db)).toEqual({
      queued: 1,
      completed: 1,
      failed: 4,
      not_applicable: 1,
    });
    const summary = await payoutSummary(t.db);
    expect(summary.counts).toEqual(await countByPayoutStatus(t.db));
    expect(summary.oldestQueuedAgeSeconds).toBeGreaterThanOrEqual(120);
    expect(summary.oldestQueuedAgeSeconds).toBeLessThan(3600);
    expect(summary.failuresLastHour).toBe(3);
    expect(summary.failuresLastDay).toBe(3);
    expect(summary.recentFailures).toEqual((await listFailedPayouts(t.db, { limit: 5 })).items);
    expect(summary.outbox).toMatchObject({ unpublished: expect.any(Number) });
    expect(summary.treasury).toMatchObject({ state: 'closed' });

    await processReferralPayouts({ db: t.db, gateway: ledgerGateway, minPayout: 1, logger }, queued, {
      actor: 'worker',
    });
    expect((await payoutSummary(t.db)).oldestQueuedAgeSeconds).toBeNull();
  });
});

describe('getReferralPayoutStatus', () => {
  it('shows the purchase, each level and each event as recorded', async () => {
    const status = await getReferralPayoutStatus(t.db, completed);
    const row = await t.db.selectFrom('purchases').selectAll().where('id', '=', completed).executeTakeFirstOrThrow();
    const levels = await t.db
      .selectFrom('referral_payouts')
      .selectAll()
      .where('purchase_id', '=', completed)
      .orderBy('level')
      .execute();
    const events = await t.db
      .selectFrom('referral_payout_events')
      .selectAll()
      .where('purchase_id', '=', completed)
      .orderBy('id')
      .execute();
    expect(status).toEqual({
      purchaseId: completed,
      status: 'completed',
      reason: null,
      attempts: 1,
      lastError: null,
      queuedAt: row.referral_payout_queued_at!.toISOString(),
      completedAt: row.referral_payout_completed_at!.toISOString(),
      payouts: [
        {
          level: 'direct',
          beneficiaryId: chain.direct.id,
          rateBps: 1000,
          amount: 1000,
          currency: 'EUR',
          status: 'paid',
          reference: levels[0]!.reference,
          paidAt: levels[0]!.paid_at!.toISOString(),
          error: null,
        },
        {
          level: 'grand',
          beneficiaryId: chain.grand.id,
          rateBps: 500,
          amount: 500,
          currency: 'EUR',
          status: 'paid',
          reference: levels[1]!.reference,
          paidAt: levels[1]!.paid_at!.toISOString(),
          error: null,
        },
      ],
      events: events.map((e) => ({
        from: e.from_status,
        to: e.to_status,
        actor: e.actor,
        operator: null,
        attempt: e.attempt,
        error: null,
        note: null,
        at: e.at.toISOString(),
      })),
    });
    expect(status.events.map((e) => [e.from, e.to, e.actor, e.attempt])).toEqual([
      [null, 'queued', 'api', 0],
      ['queued', 'completed', 'worker', 1],
    ]);
    expect(levels.map((l) => l.reference)).toEqual([expect.any(String), expect.any(String)]);

    const failedStatus = await getReferralPayoutStatus(t.db, failed[1]!);
    expect(failedStatus).toMatchObject({ status: 'failed', lastError: 'treasury said no 1', completedAt: null });
    expect(failedStatus.events.at(-1)).toMatchObject({ to: 'failed', error: 'treasury said no 1' });

    const ghost = randomUUID();
    await expect(getReferralPayoutStatus(t.db, ghost)).rejects.toMatchObject({
      code: 'not_found',
      message: `purchase ${ghost} not found`,
    });
  });
});

describe('listFailedPayouts across failures of one millisecond', () => {
  it('walks each failure exactly once in either order', async () => {
    const sameMillisecond = [];
    for (const at of ['2020-01-01T00:00:00.123400Z', '2020-01-01T00:00:00.123456Z', '2020-01-01T00:00:00.123789Z']) {
      const id = (await confirmedPurchase(t.db, chain.buyer.id, chain.content.id)).id;
      await markReferralPayoutFailed(t.db, id, 'worker', 'treasury said no');
      await sql`update purchases set referral_payout_failed_at = ${at}::timestamptz where id = ${id}`.execute(t.db);
      sameMillisecond.push(id);
    }
    for (const order of ['newest', 'oldest'] as const) {
      const walked: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await listFailedPayouts(t.db, { limit: 1, order, cursor });
        walked.push(...page.items.map((i) => i.purchaseId));
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined && walked.length < 20);
      const expected = [...failed, ...[...sameMillisecond].reverse()];
      expect(walked).toEqual(order === 'newest' ? expected : [...expected].reverse());
    }
  });
});
