import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getReferralPayoutStatus } from '@referrals/core';
import { confirmedPurchase, seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { admin, rowCounts, testApp } from './support.ts';

const t = useTestDatabase();
let app: ReturnType<typeof testApp>;

beforeAll(() => {
  app = testApp(t.db, t.url);
});
afterAll(() => app.close());

const pause = (payload: unknown) =>
  app.inject({
    method: 'POST',
    url: '/api/marketplace/referral-payouts/pause',
    headers: admin,
    payload: payload as object,
  });
const resume = () => app.inject({ method: 'POST', url: '/api/marketplace/referral-payouts/resume', headers: admin });
const summary = async () =>
  (await app.inject({ method: 'GET', url: '/api/marketplace/referral-payouts/summary', headers: admin })).json();

describe('pause and resume over HTTP', () => {
  it('refuses a pause without a usable reason with a 400 and writes nothing', async () => {
    const before = await rowCounts(t.db);
    for (const payload of [
      {},
      { reason: '' },
      { reason: '   ' },
      { reason: 'a\nb' },
      { reason: 'x'.repeat(501) },
      { reason: 7 },
      { reason: 'ok', extra: 1 },
    ]) {
      const response = await pause(payload);
      expect({ payload, status: response.statusCode }).toEqual({ payload, status: 400 });
      expect(response.json().error.code).toBe('validation_failed');
    }
    expect(await rowCounts(t.db)).toEqual(before);
    expect((await summary()).treasury.state).toBe('closed');
  });

  it('pauses with who, why and when, shows it in the summary and metrics, and resumes', async () => {
    expect((await summary()).treasury).toMatchObject({ state: 'closed', reason: null, by: null, lastError: null });

    const paused = await pause({ reason: 'fraud review #12' });
    expect(paused.statusCode).toBe(200);
    expect(paused.json()).toEqual({
      state: 'paused',
      since: expect.any(String),
      reason: 'fraud review #12',
      by: 'admin',
      lastError: null,
    });
    expect((await summary()).treasury).toEqual(paused.json());
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('referral_treasury_gate_state{state="paused"} 1');
    expect(metrics).toContain('referral_treasury_gate_state{state="closed"} 0');

    const twice = await pause({ reason: 'again' });
    expect(twice.statusCode).toBe(409);
    expect(twice.json().error).toEqual({
      code: 'conflict',
      message: expect.stringMatching(/already paused by admin since .*: fraud review #12/),
    });

    const resumed = await resume();
    expect(resumed.statusCode).toBe(200);
    expect(resumed.json()).toMatchObject({ state: 'closed', reason: null, by: null });
    expect((await summary()).treasury.state).toBe('closed');

    const notPaused = await resume();
    expect(notPaused.statusCode).toBe(409);
    expect(notPaused.json().error.message).toMatch(/not paused/);

    const events = await t.db
      .selectFrom('treasury_gate_events')
      .select(['from_state', 'to_state', 'actor', 'operator', 'reason'])
      .orderBy('id')
      .execute();
    expect(events).toEqual([
      { from_state: 'closed', to_state: 'paused', actor: 'admin-api', operator: 'admin', reason: 'fraud review #12' },
      { from_state: 'paused', to_state: 'closed', actor: 'admin-api', operator: 'admin', reason: 'fraud review #12' },
    ]);
  });

  it('answers 409 to processing a purchase while paused, transferring and charging nothing', async () => {
    const chain = await seedReferralChain(t.db, { price: 10_000 });
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    expect((await pause({ reason: 'treasury incident' })).statusCode).toBe(200);
    const process = () =>
      app.inject({
        method: 'POST',
        url: `/api/marketplace/purchase/${purchase.id}/process-referral-payouts`,
        headers: admin,
      });

    const refused = await process();
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error).toEqual({
      code: 'payouts_paused',
      message: expect.stringMatching(/paused by admin .*treasury incident.*nothing was transferred/),
    });
    expect(await getReferralPayoutStatus(t.db, purchase.id)).toMatchObject({
      status: 'queued',
      attempts: 0,
      payouts: [],
    });

    expect((await resume()).statusCode).toBe(200);
    const paid = await process();
    expect(paid.statusCode).toBe(200);
    expect(paid.json()).toMatchObject({ status: 'completed', attempts: 1 });
  });
});
