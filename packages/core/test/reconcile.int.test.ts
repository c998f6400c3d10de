import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { httpGateway, httpTreasuryBooks, latestReconciliation, ledgerGateway, type PayoutContext, processReferralPayouts, reconcile, type ReconciliationContext } from '@referrals/core';
import { failedAfterLostAnswers, type FakeTreasury, paidReferralPurchase, queuedReferralPurchase, startFakeTreasury } from '@referrals/testing';
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
  recon = { db: t.db, treasury: httpTreasuryBooks({ treasuryUrl: treasury.url, timeoutMs: 5_000 }), gateway: 'http', logger };
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
      ours: { status: 'failed', beneficiaryId: accepted.beneficiaryId, amount: 1000, currency: 'EUR', reference: null, paidAt: null },
      treasury: { reference: accepted.reference, beneficiaryId: accepted.beneficiaryId, amount: 1000, currency: 'EUR', createdAt: accepted.createdAt },
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
    expect(missing).toMatchObject({ purchaseId: forgotten, level: 'grand', treasury: null, fixable: false, ours: { status: 'paid', amount: 500 } });
    expect(missing.ours!.reference).toMatch(/^tr_/);
    const mismatch = report.drift.find((d) => d.kind === 'mismatch')!;
    expect(mismatch).toMatchObject({ purchaseId: changed, level: 'direct', ours: { amount: 1000 }, treasury: { amount: 999 }, fixable: false });
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
    await expect(reconcile(impatient, { actor: 'cli', since })).rejects.toMatchObject({ code: 'treasury_unavailable', message: expect.stringMatching(/did not answer within 300 ms .*3 attempts/) });
  });

  it('refuses a window that starts in the future', async () => {
    await expect(reconcile(recon, { actor: 'cli', since: new Date(Date.now() + 3_600_000) })).rejects.toMatchObject({ code: 'validation_failed' });
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
