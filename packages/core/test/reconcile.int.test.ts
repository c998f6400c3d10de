import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import {
  getReferralPayoutStatus,
  httpGateway,
  httpTreasuryBooks,
  latestReconciliation,
  ledgerGateway,
  type PayoutContext,
  processReferralPayouts,
  reconcile,
  type ReconciliationContext,
  referralEarnings,
  writeOffReferralPayouts,
} from '@referrals/core';
import {
  failedAfterLostAnswers,
  type FakeTreasury,
  paidReferralPurchase,
  queuedReferralPurchase,
  readInvariants,
  startFakeTreasury,
} from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });
let treasury: FakeTreasury;
let payouts: PayoutContext;
let recon: ReconciliationContext;
// Each test reconciles the window that starts when it does, so earlier tests' payouts stay out of it.
let since: Date;

beforeAll(async () => {
  treasury = await startFakeTreasury();
});
afterAll(() => treasury.close());
beforeEach(() => {
  since = new Date();
  treasury.setMode({ kind: 'succeed' });
  payouts = { db: t.db, gateway: httpGateway({ treasuryUrl: treasury.url, timeoutMs: 5_000 }), minPayout: 1, logger };
  recon = {
    db: t.db,
    treasury: httpTreasuryBooks({ treasuryUrl: treasury.url, timeoutMs: 5_000 }),
    gateway: 'http',
    logger,
  };
});

const paid = () => paidReferralPurchase(payouts);
const lostAnswers = () => failedAfterLostAnswers(payouts, treasury);

describe('reconcile with the http gateway', () => {
  it('reports nothing for purchases paid as the treasury recorded them', async () => {
    await paid();
    await paid();
    const report = await reconcile(recon, { actor: 'cli', since });
    expect(report).toMatchObject({
      gateway: 'http',
      since: since.toISOString(),
      treasuryTransfers: 4,
      recordedLevels: 4,
      drift: [],
      driftCounts: { unrecorded_transfer: 0, missing_at_treasury: 0, mismatch: 0 },
      driftTruncated: false,
      note: null,
    });
    expect(await latestReconciliation(t.db)).toEqual({ finishedAt: expect.any(Date), actor: 'cli', report });
  });

  it('finds a transfer whose answer was lost as unrecorded, and one that matches our plan as fixable', async () => {
    const id = await lostAnswers();
    const report = await reconcile(recon, { actor: 'cli', since });
    const accepted = treasury.accepted().find((a) => a.idempotencyKey === `${id}:direct`)!;
    expect(report.driftCounts).toEqual({ unrecorded_transfer: 2, missing_at_treasury: 0, mismatch: 0 });
    expect(report.drift.find((d) => d.level === 'direct')).toEqual({
      kind: 'unrecorded_transfer',
      purchaseId: id,
      level: 'direct',
      idempotencyKey: `${id}:direct`,
      ours: {
        status: 'failed',
        beneficiaryId: accepted.beneficiaryId,
        amount: 1000,
        currency: 'EUR',
        reference: null,
        paidAt: null,
      },
      treasury: {
        reference: accepted.reference,
        beneficiaryId: accepted.beneficiaryId,
        amount: 1000,
        currency: 'EUR',
        createdAt: accepted.createdAt,
      },
      fixable: true,
    });
    expect(report.drift.every((d) => d.fixable)).toBe(true);
  });

  it('finds a paid level the treasury does not have, and one whose amount differs', async () => {
    const forgotten = await paid();
    const changed = await paid();
    const clean = await paid();
    treasury.forget(`${forgotten}:grand`);
    treasury.alter(`${changed}:direct`, { amount: 999 });

    const report = await reconcile(recon, { actor: 'cli', since });
    expect(report.driftCounts).toEqual({ unrecorded_transfer: 0, missing_at_treasury: 1, mismatch: 1 });
    const missing = report.drift.find((d) => d.kind === 'missing_at_treasury')!;
    expect(missing).toMatchObject({
      purchaseId: forgotten,
      level: 'grand',
      treasury: null,
      fixable: false,
      ours: { status: 'paid', amount: 500 },
    });
    expect(missing.ours!.reference).toMatch(/^tr_/);
    const mismatch = report.drift.find((d) => d.kind === 'mismatch')!;
    expect(mismatch).toMatchObject({
      purchaseId: changed,
      level: 'direct',
      ours: { amount: 1000 },
      treasury: { amount: 999 },
      fixable: false,
    });
    expect(report.drift.some((d) => d.purchaseId === clean)).toBe(false);
    expect(report.treasuryTransfers).toBe(5);
  });

  it('reports a different beneficiary or currency as a mismatch, and an unplanned key as not fixable', async () => {
    const beneficiary = await paid();
    const currency = await paid();
    const lost = await lostAnswers();
    treasury.alter(`${beneficiary}:grand`, { beneficiaryId: randomUUID() });
    treasury.alter(`${currency}:direct`, { currency: 'USD' });
    treasury.alter(`${lost}:grand`, { amount: 501 });
    const unknown = randomUUID();
    treasury.seed([
      { idempotencyKey: `${unknown}:direct`, beneficiaryId: randomUUID(), amount: 10, currency: 'EUR' },
      // Not our key format: another client of the treasury.
      { idempotencyKey: `refund-${randomUUID()}`, beneficiaryId: randomUUID(), amount: 10, currency: 'EUR' },
    ]);

    const report = await reconcile(recon, { actor: 'cli', since });
    const summary = report.drift.map((d) => [d.kind, d.purchaseId, d.level, d.fixable]).sort();
    expect(summary).toEqual(
      [
        ['mismatch', beneficiary, 'grand', false],
        ['mismatch', currency, 'direct', false],
        ['unrecorded_transfer', lost, 'direct', true],
        ['unrecorded_transfer', lost, 'grand', false],
        ['unrecorded_transfer', unknown, 'direct', false],
      ].sort(),
    );
    expect(report.drift.find((d) => d.purchaseId === unknown)!.ours).toBeNull();
    expect(report.treasuryTransfers).toBe(7);
  });

  it('looks up a paid level outside the listing window by its key before calling it missing', async () => {
    const id = await paid();
    // The treasury dates the transfers before the window; we paid them inside it.
    const before = new Date(since.getTime() - 60_000).toISOString();
    for (const level of ['direct', 'grand'] as const) {
      const transfer = treasury.accepted().find((a) => a.idempotencyKey === `${id}:${level}`)!;
      treasury.forget(transfer.idempotencyKey);
      treasury.seed([{ ...transfer, createdAt: before }]);
    }
    const lookups = treasury.lookupCount;
    const report = await reconcile(recon, { actor: 'cli', since });
    expect(report.drift).toEqual([]);
    expect(treasury.lookupCount - lookups).toBe(2);
    expect(report.treasuryTransfers).toBe(2);
  });

  it('does not report a transfer in flight for a purchase another processor holds', async () => {
    const id = await lostAnswers();
    await t.db
      .updateTable('purchases')
      .set({ referral_payout_lease_owner: randomUUID(), referral_payout_lease_until: new Date(Date.now() + 60_000) })
      .where('id', '=', id)
      .execute();
    const report = await reconcile(recon, { actor: 'cli', since });
    expect(report.drift).toEqual([]);
  });

  it('fails with treasury_unavailable when the treasury does not answer, after a timeout per call', async () => {
    await paid();
    treasury.setMode({ kind: 'hang' });
    const impatient = { ...recon, treasury: httpTreasuryBooks({ treasuryUrl: treasury.url, timeoutMs: 300 }) };
    await expect(reconcile(impatient, { actor: 'cli', since })).rejects.toMatchObject({
      code: 'treasury_unavailable',
      message: expect.stringMatching(/did not answer within 300 ms .*3 attempts/),
    });
  });

  it('refuses a window that starts in the future', async () => {
    await expect(reconcile(recon, { actor: 'cli', since: new Date(Date.now() + 3_600_000) })).rejects.toMatchObject({
      code: 'validation_failed',
    });
  });
});

describe('reconcile with the ledger gateway', () => {
  it('says there is nothing external to compare, and counts our levels', async () => {
    const id = await queuedReferralPurchase(t.db);
    await processReferralPayouts({ ...payouts, gateway: ledgerGateway }, id, { actor: 'worker' });
    const report = await reconcile({ db: t.db, treasury: null, gateway: 'ledger', logger }, { actor: 'cli', since });
    expect(report).toMatchObject({ gateway: 'ledger', treasuryTransfers: 0, recordedLevels: 2, drift: [] });
    expect(report.note).toMatch(/ledger gateway: each transfer is a ledger movement .* no external treasury/);
  });
});

describe('reconcile with fix', () => {
  const fix = (options: Partial<Parameters<typeof reconcile>[1]> = {}) =>
    reconcile(recon, { actor: 'cli', operator: 'alice', since, fix: true, ...options });

  it('records transfers whose answers were lost, completes the purchase, sends nothing, and a second fix changes nothing', async () => {
    const id = await lostAnswers();
    const chain = await t.db
      .selectFrom('referral_payouts')
      .select(['level', 'beneficiary_id'])
      .where('purchase_id', '=', id)
      .orderBy('level')
      .execute();
    const earningsBefore = await Promise.all(chain.map((l) => referralEarnings(t.db, l.beneficiary_id)));
    const requests = treasury.requestCount;

    const report = await fix();
    expect(report.drift).toEqual([]);
    expect(report.fixedCount).toBe(2);
    const byLevel = (level: string) => treasury.accepted().find((a) => a.idempotencyKey === `${id}:${level}`)!;
    expect(report.fixed.map((f) => [f.level, f.reference, f.amount]).sort()).toEqual([
      ['direct', byLevel('direct').reference, 1000],
      ['grand', byLevel('grand').reference, 500],
    ]);
    expect(report.fixed.map((f) => f.purchaseStatus).sort()).toEqual(['completed', 'failed']);
    expect(treasury.requestCount).toBe(requests);

    const status = await getReferralPayoutStatus(t.db, id);
    expect(status).toMatchObject({ status: 'completed', reason: 'reconciled', attempts: 1 });
    expect(status.payouts.map((p) => [p.level, p.status, p.reference])).toEqual([
      ['direct', 'paid', byLevel('direct').reference],
      ['grand', 'paid', byLevel('grand').reference],
    ]);
    const repairs = status.events.filter((e) => e.actor === 'cli');
    expect(repairs.map((e) => [e.from, e.to, e.operator, e.attempt])).toEqual([
      ['failed', 'failed', 'alice', 1],
      ['failed', 'completed', 'alice', 1],
    ]);
    expect(
      repairs.every((e) =>
        /^reconciled: the treasury's transfer tr_\S+ of \d+\.00 EUR recorded as the (direct|grand) level's payment$/.test(
          e.note ?? '',
        ),
      ),
    ).toBe(true);
    expect(await Promise.all(chain.map((l) => referralEarnings(t.db, l.beneficiary_id)))).toEqual([
      earningsBefore[0]! + 1000,
      earningsBefore[1]! + 500,
    ]);
    expect(await readInvariants(t.db)).toMatchObject({ ledgerTotals: { EUR: 0 }, doubleCredits: 0, payoutsOverFee: 0 });

    const events = (await getReferralPayoutStatus(t.db, id)).events.length;
    const again = await fix();
    expect(again).toMatchObject({ drift: [], fixed: [], fixedCount: 0 });
    expect((await getReferralPayoutStatus(t.db, id)).events).toHaveLength(events);
    expect(await Promise.all(chain.map((l) => referralEarnings(t.db, l.beneficiary_id)))).toEqual([
      earningsBefore[0]! + 1000,
      earningsBefore[1]! + 500,
    ]);
    expect(treasury.requestCount).toBe(requests);
  });

  it('records the transfers of a purchase written off after its answers were lost, and completes it', async () => {
    const id = await lostAnswers();
    await writeOffReferralPayouts(t.db, id, { actor: 'cli', note: 'treasury says it never paid' });
    const report = await fix();
    expect(report.fixed.map((f) => f.level).sort()).toEqual(['direct', 'grand']);
    const status = await getReferralPayoutStatus(t.db, id);
    expect(status).toMatchObject({ status: 'completed', reason: 'reconciled' });
    expect(status.payouts.map((p) => p.status)).toEqual(['paid', 'paid']);
    expect(status.events.at(-1)).toMatchObject({ from: 'not_applicable', to: 'completed', actor: 'cli' });
  });

  it('records only the level that matches our plan and reports the rest untouched', async () => {
    const partly = await lostAnswers();
    treasury.alter(`${partly}:grand`, { amount: 501 });
    const forgotten = await paid();
    treasury.forget(`${forgotten}:direct`);
    const changed = await paid();
    treasury.alter(`${changed}:grand`, { beneficiaryId: randomUUID() });

    const report = await fix();
    expect(report.fixed.map((f) => [f.purchaseId, f.level, f.purchaseStatus])).toEqual([[partly, 'direct', 'failed']]);
    expect(report.drift.map((d) => [d.kind, d.purchaseId, d.level]).sort()).toEqual(
      [
        ['mismatch', changed, 'grand'],
        ['missing_at_treasury', forgotten, 'direct'],
        ['unrecorded_transfer', partly, 'grand'],
      ].sort(),
    );
    const status = await getReferralPayoutStatus(t.db, partly);
    expect(status).toMatchObject({ status: 'failed', reason: null });
    expect(status.payouts.map((p) => [p.level, p.status])).toEqual([
      ['direct', 'paid'],
      ['grand', 'failed'],
    ]);
    for (const id of [forgotten, changed]) {
      const untouched = await getReferralPayoutStatus(t.db, id);
      expect(untouched.events.some((e) => e.actor === 'cli')).toBe(false);
      expect(untouched.payouts.every((p) => p.status === 'paid')).toBe(true);
    }
    expect(await readInvariants(t.db)).toMatchObject({ ledgerTotals: { EUR: 0 }, doubleCredits: 0 });
  });
});
