import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '@referrals/testing/vitest';
import { admin, rowCounts, testApp } from './support.ts';

const t = useTestDatabase();
let app: ReturnType<typeof testApp>;

beforeAll(() => {
  app = testApp(t.db, t.url);
});
afterAll(() => app.close());

const pause = (payload: unknown) => app.inject({ method: 'POST', url: '/api/marketplace/referral-payouts/pause', headers: admin, payload: payload as object });
const resume = () => app.inject({ method: 'POST', url: '/api/marketplace/referral-payouts/resume', headers: admin });
const summary = async () => (await app.inject({ method: 'GET', url: '/api/marketplace/referral-payouts/summary', headers: admin })).json();

describe('pause and resume over HTTP', () => {
  it('refuses a pause without a usable reason with a 400 and writes nothing', async () => {
    const before = await rowCounts(t.db);
    for (const payload of [{}, { reason: '' }, { reason: '   ' }, { reason: 'a\nb' }, { reason: 'x'.repeat(501) }, { reason: 7 }, { reason: 'ok', extra: 1 }]) {
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
    expect(paused.json()).toEqual({ state: 'paused', since: expect.any(String), reason: 'fraud review #12', by: 'admin', lastError: null });
    expect((await summary()).treasury).toEqual(paused.json());
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('referral_treasury_gate_state{state="paused"} 1');
    expect(metrics).toContain('referral_treasury_gate_state{state="closed"} 0');

    const twice = await pause({ reason: 'again' });
    expect(twice.statusCode).toBe(409);
    expect(twice.json().error).toEqual({ code: 'conflict', message: expect.stringMatching(/already paused by admin since .*: fraud review #12/) });

    const resumed = await resume();
    expect(resumed.statusCode).toBe(200);
    expect(resumed.json()).toMatchObject({ state: 'closed', reason: null, by: null });
    expect((await summary()).treasury.state).toBe('closed');

    const notPaused = await resume();
    expect(notPaused.statusCode).toBe(409);
    expect(notPaused.json().error.message).toMatch(/not paused/);

    const events = await t.db.selectFrom('treasury_gate_events').select(['from_state', 'to_state', 'actor', 'operator', 'reason']).orderBy('id').execute();
    expect(events).toEqual([
      { from_state: 'closed', to_state: 'paused', actor: 'admin-api', operator: 'admin', reason: 'fraud review #12' },
      { from_state: 'paused', to_state: 'closed', actor: 'admin-api', operator: 'admin', reason: 'fraud review #12' },
    ]);
  });
});
