import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { httpGateway, type PayoutContext } from '@referrals/core';
import { failedAfterLostAnswers, type FakeTreasury, paidReferralPurchase, startFakeTreasury } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { admin, rowCounts, silent, testApp } from './support.ts';

const t = useTestDatabase();
let treasury: FakeTreasury;
let app: ReturnType<typeof testApp>;
let payouts: PayoutContext;
let since: string;
const URL = '/api/marketplace/referral-payouts/reconciliation';

beforeAll(async () => {
  treasury = await startFakeTreasury();
  app = testApp(t.db, t.url, {
    env: { PAYOUT_GATEWAY: 'http', TREASURY_URL: treasury.url, TREASURY_TIMEOUT_MS: '1000' },
  });
});
afterAll(async () => {
  await app.close();
  await treasury.close();
});
beforeEach(() => {
  since = new Date().toISOString();
  treasury.setMode({ kind: 'succeed' });
  payouts = {
    db: t.db,
    gateway: httpGateway({ treasuryUrl: treasury.url, timeoutMs: 5_000 }),
    minPayout: 1,
    logger: silent,
  };
});

describe('GET /api/marketplace/referral-payouts/reconciliation', () => {
  it('answers the report: drift for a lost answer, none for a clean purchase', async () => {
    await paidReferralPurchase(payouts);
    const lost = await failedAfterLostAnswers(payouts, treasury);

    const response = await app.inject({
      method: 'GET',
      url: `${URL}?since=${encodeURIComponent(since)}`,
      headers: admin,
    });
    expect(response.statusCode).toBe(200);
    const report = response.json();
    expect(report).toMatchObject({
      since,
      gateway: 'http',
      treasuryTransfers: 4,
      recordedLevels: 4,
      fixed: [],
      driftTruncated: false,
    });
    expect(report.driftCounts).toEqual({ unrecorded_transfer: 2, missing_at_treasury: 0, mismatch: 0 });
    expect(
      report.drift
        .map((d: { purchaseId: string; level: string; fixable: boolean }) => [d.purchaseId, d.level, d.fixable])
        .sort(),
    ).toEqual([
      [lost, 'direct', true],
      [lost, 'grand', true],
    ]);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('referral_reconciliation_drift{kind="unrecorded_transfer"} 2');
    expect(metrics).toContain('referral_reconciliation_drift{kind="missing_at_treasury"} 0');
    expect(metrics).toMatch(/^referral_reconciliation_last_run_timestamp_seconds \d+/m);
  });

  it('refuses a bad since with 400 and writes nothing; needs the admin token', async () => {
    const before = await rowCounts(t.db);
    const lists = treasury.listRequests().length;
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString();
    for (const [query, message] of [
      ['since=yesterday', /since must be a date/],
      ['since=2026-13-01', /since must be a date/],
      [`since=${encodeURIComponent(tomorrow)}`, /is in the future/],
      ['since=2026-11-20&limit=5', /must NOT have additional properties/],
    ] as const) {
      const response = await app.inject({ method: 'GET', url: `${URL}?${query}`, headers: admin });
      expect(response.statusCode, query).toBe(400);
      expect(response.json().error).toMatchObject({
        code: 'validation_failed',
        message: expect.stringMatching(message),
      });
    }
    const anonymous = await app.inject({ method: 'GET', url: URL });
    expect(anonymous.statusCode).toBe(401);
    expect(await rowCounts(t.db)).toEqual(before);
    expect(treasury.listRequests().length).toBe(lists);
  });

  it('answers 502 when the treasury cannot be read', async () => {
    treasury.setMode({ kind: 'hang' });
    const response = await app.inject({
      method: 'GET',
      url: `${URL}?since=${encodeURIComponent(since)}`,
      headers: admin,
    });
    expect(response.statusCode).toBe(502);
    expect(response.json().error).toMatchObject({
      code: 'treasury_unavailable',
      message: expect.stringMatching(/did not answer within 1000 ms/),
    });
  });
});

describe('POST /api/marketplace/referral-payouts/reconciliation/fix', () => {
  it('records the unrecorded transfers that match our plan, names the operator, sends nothing; a repeat changes nothing', async () => {
    const lost = await failedAfterLostAnswers(payouts, treasury);
    const requests = treasury.requestCount;
    const response = await app.inject({ method: 'POST', url: `${URL}/fix`, headers: admin, payload: { since } });
    expect(response.statusCode).toBe(200);
    const report = response.json();
    expect(report).toMatchObject({ drift: [], fixedCount: 2 });
    expect(report.fixed.map((f: { purchaseId: string; level: string }) => `${f.purchaseId}:${f.level}`).sort()).toEqual(
      [`${lost}:direct`, `${lost}:grand`],
    );
    expect(treasury.requestCount).toBe(requests);

    const status = (
      await app.inject({
        method: 'GET',
        url: `/api/marketplace/purchase/${lost}/referral-payout-status`,
        headers: admin,
      })
    ).json();
    expect(status).toMatchObject({ status: 'completed', reason: 'reconciled' });
    expect(status.events.filter((e: { actor: string }) => e.actor === 'admin-api')).toHaveLength(2);

    const before = await rowCounts(t.db);
    const again = await app.inject({ method: 'POST', url: `${URL}/fix`, headers: admin, payload: { since } });
    expect(again.json()).toMatchObject({ drift: [], fixed: [], fixedCount: 0 });
    const after = await rowCounts(t.db);
    expect({ ...after, reconciliation_runs: 0 }).toEqual({ ...before, reconciliation_runs: 0 });
  });

  it('refuses a bad window or an unknown field with 400 and changes nothing; needs the admin token', async () => {
    await failedAfterLostAnswers(payouts, treasury);
    const before = await rowCounts(t.db);
    for (const payload of [{ since: 'last week' }, { since: '2026-11-20', dryRun: true }, { since: 20261120 }]) {
      const response = await app.inject({ method: 'POST', url: `${URL}/fix`, headers: admin, payload });
      expect(response.statusCode, JSON.stringify(payload)).toBe(400);
      expect(response.json().error.code).toBe('validation_failed');
    }
    expect((await app.inject({ method: 'POST', url: `${URL}/fix`, payload: { since } })).statusCode).toBe(401);
    expect(await rowCounts(t.db)).toEqual(before);
  });
});
