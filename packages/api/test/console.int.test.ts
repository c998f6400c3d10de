import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, markReferralPayoutFailed, readTreasuryGate } from '@referrals/core';
import { confirmedPurchase, seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { ADMIN_TOKEN, rowCounts, testApp } from './support.ts';

const t = useTestDatabase();
let app: ReturnType<typeof testApp>;
const ORIGIN = 'http://console.test';
const form = { 'content-type': 'application/x-www-form-urlencoded', host: 'console.test', origin: ORIGIN };

beforeAll(() => {
  app = testApp(t.db, t.url);
});
afterAll(() => app.close());

async function session(): Promise<string> {
  const response = await app.inject({
    method: 'POST',
    url: '/console/sign-in',
    headers: form,
    payload: `token=${ADMIN_TOKEN}`,
  });
  expect(response.statusCode).toBe(303);
  const cookie = response.cookies.find((c) => c.name === 'referrals_console');
  expect(cookie).toBeDefined();
  return `referrals_console=${cookie!.value}`;
}

describe('console without a browser', () => {
  it('redirects every page to sign-in without a session and renders no data', async () => {
    const chain = await seedReferralChain(t.db);
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    for (const url of ['/console', '/console/payouts?status=failed', `/console/purchases/${purchase.id}`]) {
      const response = await app.inject({ method: 'GET', url, headers: { cookie: 'referrals_console=forged.value' } });
      expect({ url, status: response.statusCode, location: response.headers.location }).toEqual({
        url,
        status: 303,
        location: '/console/sign-in',
      });
      expect(response.body).toBe('');
    }
  });

  it('refuses state changes without a same-origin Origin, or without a session, and writes nothing', async () => {
    const chain = await seedReferralChain(t.db);
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    await markReferralPayoutFailed(t.db, purchase.id, 'worker', 'treasury answered 500');
    const cookie = await session();
    const before = await rowCounts(t.db);
    const posts = [
      ['/console/treasury/pause', 'reason=x'],
      [`/console/purchases/${purchase.id}/retry`, ''],
      [`/console/purchases/${purchase.id}/write-off`, 'reason=x&confirm=yes'],
    ] as const;
    for (const [url, payload] of posts) {
      for (const origin of [
        undefined,
        'null',
        'http://evil.test',
        'http://console.test.evil.test',
        'https://console.test:8443',
      ]) {
        const headers: Record<string, string> = { ...form, cookie };
        if (origin === undefined) delete headers.origin;
        else headers.origin = origin;
        const response = await app.inject({ method: 'POST', url, headers, payload });
        expect({ url, origin, status: response.statusCode }).toEqual({ url, origin, status: 403 });
        expect(response.body).toContain('role="alert"');
      }
      const anonymous = await app.inject({ method: 'POST', url, headers: form, payload });
      expect({ url, status: anonymous.statusCode, location: anonymous.headers.location }).toEqual({
        url,
        status: 303,
        location: '/console/sign-in',
      });
    }
    expect(await rowCounts(t.db)).toEqual(before);
    expect((await readTreasuryGate(t.db)).state).toBe('closed');
  });

  it('answers a refused action with the reason as an escaped page, and a 404 for an unknown purchase', async () => {
    const chain = await seedReferralChain(t.db);
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    const cookie = await session();
    const writeOff = await app.inject({
      method: 'POST',
      url: `/console/purchases/${purchase.id}/write-off`,
      headers: { ...form, cookie },
      payload: 'reason=%3Cb%3Enope%3C%2Fb%3E&confirm=yes',
    });
    expect(writeOff.statusCode).toBe(409);
    expect(writeOff.body).toContain('only failed referral payouts can be written off');

    const blank = await app.inject({
      method: 'POST',
      url: `/console/purchases/${purchase.id}/write-off`,
      headers: { ...form, cookie },
      payload: 'reason=%20%20',
    });
    expect(blank.statusCode).toBe(400);
    expect(blank.body).toContain('a reason is required');

    const unknown = await app.inject({
      method: 'GET',
      url: '/console/purchases/00000000-0000-4000-8000-000000000000',
      headers: { cookie },
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.headers['content-type']).toMatch(/^text\/html/);

    const search = await app.inject({
      method: 'GET',
      url: `/console/payouts?q=${encodeURIComponent('<script>x</script>')}&from=2026-02-31`,
      headers: { cookie },
    });
    expect(search.statusCode).toBe(400);
    expect(search.body).not.toContain('<script>x');
  });

  it('shows the last reconciliation run on the overview, its drift by kind and items as escaped text', async () => {
    const cookie = await session();
    const before = await app.inject({ method: 'GET', url: '/console', headers: { cookie } });
    expect(before.statusCode).toBe(200);
    expect(before.body).toContain('No reconciliation has run yet');

    const purchaseId = '0b6c5a8e-3f7e-4c1a-9d2b-5e8f7a6b4c3d';
    const report = {
      since: '2026-11-21T00:00:00.000Z',
      checkedAt: '2026-11-28T00:00:00.000Z',
      gateway: 'http',
      treasuryTransfers: 41,
      recordedLevels: 40,
      driftCounts: { unrecorded_transfer: 1, missing_at_treasury: 0, mismatch: 2 },
      drift: [
        { kind: 'unrecorded_transfer', purchaseId, level: 'direct', idempotencyKey: `${purchaseId}:<b>direct</b>` },
      ],
      driftTruncated: true,
      fixed: [],
      fixedCount: 0,
      note: null,
    };
    await t.db
      .insertInto('reconciliation_runs')
      .values({
        checked_at: report.checkedAt,
        since: report.since,
        gateway: report.gateway,
        actor: 'cli',
        treasury_transfers: report.treasuryTransfers,
        recorded_levels: report.recordedLevels,
        unrecorded_transfers: 1,
        missing_at_treasury: 0,
        mismatches: 2,
        fixed: 0,
        report: JSON.stringify(report),
      })
      .execute();

    const after = await app.inject({ method: 'GET', url: '/console', headers: { cookie } });
    expect(after.statusCode).toBe(200);
    expect(after.body).not.toContain('No reconciliation has run yet');
    expect(after.body).toContain('41 treasury transfers, 40 recorded levels');
    expect(after.body).toContain('data-drift="3"');
    expect(after.body).toContain('<dd data-count="mismatch">2</dd>');
    expect(after.body).toContain(`href="/console/purchases/${purchaseId}"`);
    expect(after.body).toContain('&lt;b&gt;direct&lt;/b&gt;');
    expect(after.body).not.toContain('<b>direct</b>');
  });

  it('ends the session on sign-out: the same cookie is refused afterwards, wherever it was copied', async () => {
    const cookie = await session();
    const stored = () => t.db.selectFrom('console_sessions').select(['operator', 'expires_at']).execute();
    const sessionsBefore = (await stored()).length;
    expect((await app.inject({ method: 'GET', url: '/console', headers: { cookie } })).statusCode).toBe(200);

    const signOut = await app.inject({ method: 'POST', url: '/console/sign-out', headers: { ...form, cookie } });
    expect(signOut.statusCode).toBe(303);
    expect(signOut.headers.location).toBe('/console/sign-in?notice=signed-out');
    expect(signOut.cookies.find((c) => c.name === 'referrals_console')?.value).toBe('');
    expect((await stored()).length).toBe(sessionsBefore - 1);

    // A copy of the cookie taken before signing out: still signed by us, but its session has ended.
    for (const url of ['/console', '/console/payouts']) {
      const replayed = await app.inject({ method: 'GET', url, headers: { cookie } });
      expect({ url, status: replayed.statusCode, location: replayed.headers.location }).toEqual({
        url,
        status: 303,
        location: '/console/sign-in',
      });
    }
    const replayedPost = await app.inject({
      method: 'POST',
      url: '/console/treasury/pause',
      headers: { ...form, cookie },
      payload: 'reason=replayed',
    });
    expect(replayedPost.statusCode).toBe(303);
    expect((await readTreasuryGate(t.db)).state).toBe('closed');
  });

  it('refuses an expired session and forgets expired sessions at the next sign-in', async () => {
    const cookie = await session();
    await t.db.updateTable('console_sessions').set({ expires_at: sql<Date>`now() - interval '1 second'` }).execute();
    const expired = await app.inject({ method: 'GET', url: '/console', headers: { cookie } });
    expect(expired.statusCode).toBe(303);
    expect(expired.headers.location).toBe('/console/sign-in');

    const fresh = await session();
    const rows = await t.db.selectFrom('console_sessions').select(['operator', 'id_hash']).execute();
    // Only the new session is left; the table stores hashes, never the id the cookie carries.
    expect(rows).toEqual([{ operator: null, id_hash: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
    expect(decodeURIComponent(fresh)).not.toContain(rows[0]!.id_hash);
    expect((await app.inject({ method: 'GET', url: '/console', headers: { cookie: fresh } })).statusCode).toBe(200);
  });

  it('writes nothing for a refused sign-in', async () => {
    const before = await rowCounts(t.db);
    const refused = await app.inject({
      method: 'POST',
      url: '/console/sign-in',
      headers: form,
      payload: 'token=not-the-admin-token-0123',
    });
    expect(refused.statusCode).toBe(401);
    expect(refused.cookies).toEqual([]);
    expect(await rowCounts(t.db)).toEqual(before);
  });

  it('answers 503 with Retry-After, not 500, when the sessions cannot be read or written', async () => {
    const cookie = await session();
    // Nothing listens on port 1: every query fails to connect, as during an outage.
    const unreachable = createDatabase('postgres://postgres@127.0.0.1:1/postgres', { max: 1 });
    const down = testApp(unreachable, t.url);
    try {
      const signIn = await down.inject({
        method: 'POST',
        url: '/console/sign-in',
        headers: form,
        payload: `token=${ADMIN_TOKEN}`,
      });
      expect(signIn.statusCode).toBe(503);
      expect(signIn.headers['retry-after']).toBeDefined();
      expect(signIn.cookies).toEqual([]);
      const page = await down.inject({ method: 'GET', url: '/console', headers: { cookie } });
      expect(page.statusCode).toBe(503);
      expect(page.headers['retry-after']).toBeDefined();
      expect(page.body).toContain('role="alert"');
    } finally {
      await down.close();
      await unreachable.destroy();
    }
  });

  it('keeps sign-in closed when no admin token is configured', async () => {
    const closed = testApp(t.db, t.url, { env: { ADMIN_API_TOKEN: '' } });
    try {
      const response = await closed.inject({
        method: 'POST',
        url: '/console/sign-in',
        headers: form,
        payload: 'token=',
      });
      expect(response.statusCode).toBe(401);
      expect(response.body).toContain('Sign-in is disabled');
      expect(response.cookies).toEqual([]);
    } finally {
      await closed.close();
    }
  });
});
