import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import {
  getReferralPayoutStatus,
  httpGateway,
  type PayoutContext,
  type PayoutFailure,
  type PayoutResult,
  processReferralPayouts,
} from '@referrals/core';
import {
  confirmedPurchase,
  type FakeTreasury,
  readInvariants,
  seedReferralChain,
  startFakeTreasury,
} from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });
let treasury: FakeTreasury;
let ctx: PayoutContext;

beforeAll(async () => {
  treasury = await startFakeTreasury();
});
afterAll(() => treasury.close());
beforeEach(() => {
  treasury.setMode({ kind: 'succeed' });
  ctx = { db: t.db, gateway: httpGateway({ treasuryUrl: treasury.url, timeoutMs: 300 }), minPayout: 1, logger };
});

async function queuedPurchase(): Promise<string> {
  const chain = await seedReferralChain(t.db, { price: 10_000 });
  return (await confirmedPurchase(t.db, chain.buyer.id, chain.content.id)).id;
}

const acceptedFor = (id: string) => treasury.accepted().filter((a) => a.idempotencyKey.startsWith(`${id}:`));

async function attempt(id: string, finalAttempt = false): Promise<PayoutResult & { failure: PayoutFailure }> {
  const result = await processReferralPayouts(ctx, id, { actor: 'worker', finalAttempt });
  expect(result.failure).not.toBeNull();
  return result as PayoutResult & { failure: PayoutFailure };
}

describe('processReferralPayouts with the http gateway', () => {
  it('completes after transient failures, one accepted transfer per level', async () => {
    const id = await queuedPurchase();
    treasury.setMode({ kind: 'fail', times: 2 });
    const first = await attempt(id);
    expect(first).toMatchObject({ status: 'retryable', attempts: 1 });
    expect(first.failure.levels).toEqual(['direct', 'grand']);

    const outcome = await processReferralPayouts(ctx, id, { actor: 'worker' });
    expect(outcome).toMatchObject({ status: 'completed', attempts: 2 });
    expect(
      acceptedFor(id)
        .map((a) => [a.idempotencyKey, a.amount])
        .sort(),
    ).toEqual([
      [`${id}:direct`, 1000],
      [`${id}:grand`, 500],
    ]);
    const status = await getReferralPayoutStatus(t.db, id);
    expect(status.events.map((e) => [e.from, e.to, e.attempt, e.error !== null])).toEqual([
      [null, 'queued', 0, false],
      ['queued', 'queued', 1, true],
      ['queued', 'completed', 2, false],
    ]);
  });

  it('treats a hanging treasury as a failure and a lost response as paid on the retry', async () => {
    const id = await queuedPurchase();
    treasury.setMode({ kind: 'hang' });
    expect((await attempt(id)).failure.message).toMatch(/did not answer within 300 ms/);

    treasury.setMode({ kind: 'drop-response' });
    expect((await attempt(id)).failure.message).toMatch(/treasury unreachable/);
    expect(acceptedFor(id)).toHaveLength(2);

    treasury.setMode({ kind: 'succeed' });
    const outcome = await processReferralPayouts(ctx, id, { actor: 'worker' });
    expect(outcome).toMatchObject({ status: 'completed', attempts: 3 });
    expect(acceptedFor(id)).toHaveLength(2);
    const status = await getReferralPayoutStatus(t.db, id);
    expect(status.payouts.map((p) => p.reference).sort()).toEqual(
      acceptedFor(id)
        .map((a) => a.reference)
        .sort(),
    );
  });

  it('fails on the final attempt, and a repair pays only the level still unpaid', async () => {
    const id = await queuedPurchase();
    treasury.setMode({ kind: 'fail', times: Infinity, only: (key) => key.endsWith(':grand') });
    await attempt(id);
    const last = await attempt(id, true);
    expect(last).toMatchObject({ status: 'failed', attempts: 2 });
    const failed = await getReferralPayoutStatus(t.db, id);
    expect(failed).toMatchObject({ status: 'failed', attempts: 2 });
    expect(failed.lastError).toMatch(/treasury answered 500/);
    expect(failed.payouts.map((p) => [p.level, p.status])).toEqual([
      ['direct', 'paid'],
      ['grand', 'failed'],
    ]);
    expect(treasury.requestsFor(`${id}:direct`)).toBe(1);

    treasury.setMode({ kind: 'succeed' });
    const repaired = await processReferralPayouts(ctx, id, { actor: 'admin-api' });
    expect(repaired).toMatchObject({ status: 'completed', attempts: 3 });
    expect(repaired.paid.map((p) => p.level)).toEqual(['grand']);
    expect(treasury.requestsFor(`${id}:direct`)).toBe(1);
    expect(acceptedFor(id)).toHaveLength(2);
  });

  it('keeps concurrent processors of one purchase to one transfer per level', async () => {
    const id = await queuedPurchase();
    treasury.setMode({ kind: 'slow', delayMs: 100 });
    const outcomes = await Promise.all(
      ['worker', 'cli', 'admin-api'].map((actor) => processReferralPayouts(ctx, id, { actor: actor as 'worker' })),
    );
    expect(outcomes.every((o) => o.status === 'completed')).toBe(true);
    expect(outcomes.filter((o) => o.changed)).toHaveLength(1);
    expect(treasury.requestsFor(`${id}:direct`)).toBe(1);
    expect(treasury.requestsFor(`${id}:grand`)).toBe(1);
    const report = await readInvariants(t.db);
    expect(report.ledgerTotals).toEqual({ EUR: 0 });
    expect(report.doubleCredits).toBe(0);
  });
});
