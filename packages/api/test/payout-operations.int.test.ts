import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPurchase, httpGateway, processReferralPayouts, referralEarnings } from '@referrals/core';
import {
  confirmedPurchase,
  type FakeTreasury,
  type ReferralChain,
  seedReferralChain,
  startFakeTreasury,
  uniqueHandle,
  waitFor,
} from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { admin, expectHealthyLedger, rowCounts, silent, testApp } from './support.ts';

const t = useTestDatabase();
const ALICE_TOKEN = 'alice-token-0123456789abcdef';
let app: ReturnType<typeof testApp>;
let treasury: FakeTreasury;

beforeAll(async () => {
  app = testApp(t.db, t.url, { env: { ADMIN_TOKENS: `alice:${ALICE_TOKEN}, bob:bob-token-0123456789abcdef` } });
  // Refuses the direct level only: the grand level of the same purchase is paid.
  treasury = await startFakeTreasury({ kind: 'fail', times: Infinity, only: (key) => key.endsWith(':direct') });
});
afterAll(async () => {
  await app.close();
  await treasury.close();
});
afterEach(() => expectHealthyLedger(t.db));

/** A purchase whose direct level the treasury refused until retries ran out; its grand level is paid. */
async function failedPurchase(chain: ReferralChain): Promise<string> {
  const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
  const ctx = {
    db: t.db,
    gateway: httpGateway({ treasuryUrl: treasury.url, timeoutMs: 2000 }),
    minPayout: 1,
    logger: silent,
  };
  expect(await processReferralPayouts(ctx, purchase.id, { actor: 'worker', finalAttempt: true })).toMatchObject({
    status: 'failed',
  });
  return purchase.id;
}

const writeOff = (id: string, body: unknown, headers: Record<string, string> = admin) =>
  app.inject({
    method: 'POST',
    url: `/api/marketplace/purchase/${id}/write-off-referral-payouts`,
    headers,
    payload: body as object,
  });

describe('POST /api/marketplace/purchase/:id/write-off-referral-payouts', () => {
  it('writes off the unpaid level, keeps the paid one, and records who and why', async () => {
    const chain = await seedReferralChain(t.db);
    const id = await failedPurchase(chain);
    expect(await referralEarnings(t.db, chain.grand.id)).toBe(500);

    const response = await writeOff(
      id,
      { reason: '  beneficiary account closed  ' },
      { authorization: `Bearer ${ALICE_TOKEN}` },
    );
    expect(response.statusCode).toBe(200);
    const view = response.json();
    expect(view).toMatchObject({ purchaseId: id, status: 'not_applicable', reason: 'written_off', attempts: 1 });
    expect(view.payouts.map((p: { level: string; status: string }) => [p.level, p.status])).toEqual([
      ['direct', 'written_off'],
      ['grand', 'paid'],
    ]);
    expect(view.events.at(-1)).toMatchObject({
      from: 'failed',
      to: 'not_applicable',
      actor: 'admin-api',
      operator: 'alice',
      attempt: 1,
      error: null,
      note: 'beneficiary account closed',
    });
    // Nothing more is paid, and processing it again changes nothing.
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(0);
    expect(await referralEarnings(t.db, chain.grand.id)).toBe(500);
    const before = await rowCounts(t.db);
    const again = await app.inject({
      method: 'POST',
      url: `/api/marketplace/purchase/${id}/process-referral-payouts`,
      headers: admin,
    });
    expect(again.json()).toMatchObject({ status: 'not_applicable', reason: 'written_off' });
    expect(await rowCounts(t.db)).toEqual(before);
    expect(treasury.requestsFor(`${id}:grand`)).toBe(1);
  });

  it('names no operator for the shared ADMIN_API_TOKEN', async () => {
    const id = await failedPurchase(await seedReferralChain(t.db));
    const response = await writeOff(id, { reason: 'duplicate account' });
    expect(response.json().events.at(-1)).toMatchObject({
      actor: 'admin-api',
      operator: null,
      note: 'duplicate account',
    });
  });

  it('answers 409 unless the purchase is failed, and writes nothing', async () => {
    const chain = await seedReferralChain(t.db);
    const { purchase: pending } = await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id });
    const queued = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    const completed = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    await app.inject({
      method: 'POST',
      url: `/api/marketplace/purchase/${completed.id}/process-referral-payouts`,
      headers: admin,
    });
    const writtenOff = await failedPurchase(chain);
    expect((await writeOff(writtenOff, { reason: 'first' })).statusCode).toBe(200);

    const before = await rowCounts(t.db);
    for (const [id, status] of [
      [pending.id, 'not confirmed'],
      [queued.id, 'queued'],
      [completed.id, 'completed'],
      [writtenOff, 'not_applicable'],
    ]) {
      const response = await writeOff(id!, { reason: 'again' });
      expect({ id, status: response.statusCode, code: response.json().error.code }).toEqual({
        id,
        status: 409,
        code: 'conflict',
      });
      expect(response.json().error.message).toContain(`is ${status}`);
    }
    expect(await rowCounts(t.db)).toEqual(before);
  });

  it('refuses bad input with a 400 or 404 and writes nothing', async () => {
    const id = await failedPurchase(await seedReferralChain(t.db));
    const before = await rowCounts(t.db);
    const cases: [string, unknown, number, string][] = [
      [id, {}, 400, 'validation_failed'],
      [id, { reason: '' }, 400, 'validation_failed'],
      [id, { reason: '   ' }, 400, 'validation_failed'],
      [id, { reason: 'x'.repeat(1001) }, 400, 'validation_failed'],
      [id, { reason: 'bad\u0000byte' }, 400, 'validation_failed'],
      [id, { reason: 42 }, 400, 'validation_failed'],
      [id, { reason: 'ok', extra: true }, 400, 'validation_failed'],
      ['not-a-uuid', { reason: 'ok' }, 400, 'validation_failed'],
      ['00000000-0000-4000-8000-000000000000', { reason: 'ok' }, 404, 'not_found'],
    ];
    for (const [target, body, status, code] of cases) {
      const response = await writeOff(target, body);
      expect({ body, status: response.statusCode, code: response.json().error.code }).toEqual({ body, status, code });
    }
    expect((await writeOff(id, { reason: 'ok' }, { authorization: 'Bearer wrong-token-0123456789' })).statusCode).toBe(
      401,
    );
    expect(await rowCounts(t.db)).toEqual(before);
  });
});

describe('GET /api/marketplace/referral-payouts', () => {
  const search = async (query: string) => {
    const response = await app.inject({
      method: 'GET',
      url: `/api/marketplace/referral-payouts?${query}`,
      headers: admin,
    });
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as {
      items: { purchaseId: string; status: string; buyerHandle: string; lastError: string | null }[];
      nextCursor: string | null;
    };
  };
  const ids = (page: { items: { purchaseId: string }[] }) => page.items.map((i) => i.purchaseId);

  it('finds by purchase, buyer or beneficiary id, by handle, and by error text', async () => {
    const chain = await seedReferralChain(t.db);
    const other = await seedReferralChain(t.db);
    const failed = await failedPurchase(chain);
    const completed = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    await app.inject({
      method: 'POST',
      url: `/api/marketplace/purchase/${completed.id}/process-referral-payouts`,
      headers: admin,
    });
    const unrelated = await confirmedPurchase(t.db, other.buyer.id, other.content.id);

    expect(ids(await search(`q=${failed}`))).toEqual([failed]);
    expect(ids(await search(`q=${chain.buyer.id}`))).toEqual([completed.id, failed]);
    expect(ids(await search(`q=${chain.direct.id}`))).toEqual([completed.id, failed]);
    expect(ids(await search(`q=${encodeURIComponent(chain.buyer.handle.toUpperCase())}`))).toEqual([
      completed.id,
      failed,
    ]);
    expect(ids(await search(`q=${encodeURIComponent(`@${chain.grand.handle}`)}`))).toEqual([completed.id, failed]);
    expect(ids(await search(`q=${other.buyer.id}`))).toEqual([unrelated.id]);
    const byError = await search(`q=${encodeURIComponent('bad day')}&status=failed&limit=200`);
    expect(ids(byError)).toContain(failed);
    expect(byError.items.every((i) => i.status === 'failed' && i.lastError?.includes('bad day'))).toBe(true);
    expect(ids(await search(`q=${chain.buyer.id}&status=completed`))).toEqual([completed.id]);
    // LIKE wildcards in the text are literal.
    expect(ids(await search('q=%25'))).toEqual([]);
    expect(ids(await search(`q=${uniqueHandle('nobody')}`))).toEqual([]);
  });

  it('pages newest first by keyset and stays correct while purchases arrive', async () => {
    const chain = await seedReferralChain(t.db);
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await confirmedPurchase(t.db, chain.buyer.id, chain.content.id)).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await search(`q=${chain.buyer.id}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...ids(page));
      cursor = page.nextCursor;
      pages++;
      await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    } while (cursor !== null && pages < 10);
    expect(seen).toEqual([...made].reverse());
  });

  it('filters by confirmation time', async () => {
    const chain = await seedReferralChain(t.db);
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect(ids(await search(`q=${chain.buyer.id}&from=${today}&to=${tomorrow}`))).toEqual([purchase.id]);
    expect(ids(await search(`q=${chain.buyer.id}&from=${tomorrow}`))).toEqual([]);
    expect(
      ids(await search(`q=${chain.buyer.id}&to=${encodeURIComponent(new Date(Date.now() - 3_600_000).toISOString())}`)),
    ).toEqual([]);
  });

  it('answers 400 for bad parameters and 401 without a token', async () => {
    for (const query of [
      'status=paid',
      'limit=0',
      'limit=201',
      'limit=abc',
      'from=2026-02-31',
      'from=yesterday',
      'from=2026-11-28&to=2026-11-27',
      'cursor=abc',
      `q=${'x'.repeat(201)}`,
      'other=1',
    ]) {
      const response = await app.inject({
        method: 'GET',
        url: `/api/marketplace/referral-payouts?${query}`,
        headers: admin,
      });
      expect({ query, status: response.statusCode, code: response.json().error.code }).toEqual({
        query,
        status: 400,
        code: 'validation_failed',
      });
    }
    expect((await app.inject({ method: 'GET', url: '/api/marketplace/referral-payouts' })).statusCode).toBe(401);
  });
});

describe('POST /api/marketplace/purchase/:id/process-referral-payouts', () => {
  const processOne = (target: ReturnType<typeof testApp>, id: string, headers: Record<string, string>) =>
    target.inject({ method: 'POST', url: `/api/marketplace/purchase/${id}/process-referral-payouts`, headers });

  it('records the named operator who retried, and none for the shared ADMIN_API_TOKEN', async () => {
    // The levels were planned for the treasury, so the repair goes through it too (one gateway per deployment).
    const httpApp = testApp(t.db, t.url, {
      env: { ADMIN_TOKENS: `alice:${ALICE_TOKEN}` },
      gateway: httpGateway({ treasuryUrl: treasury.url, timeoutMs: 2000 }),
    });
    try {
      const chain = await seedReferralChain(t.db);
      const byAlice = await failedPurchase(chain);
      const byShared = await failedPurchase(chain);
      treasury.setMode({ kind: 'succeed' });

      const alice = await processOne(httpApp, byAlice, { authorization: `Bearer ${ALICE_TOKEN}` });
      expect(alice.statusCode, alice.body).toBe(200);
      expect(alice.json()).toMatchObject({ status: 'completed' });
      expect(alice.json().events.at(-1)).toMatchObject({
        from: 'failed',
        to: 'completed',
        actor: 'admin-api',
        operator: 'alice',
      });

      const shared = await processOne(httpApp, byShared, admin);
      expect(shared.statusCode, shared.body).toBe(200);
      expect(shared.json().events.at(-1)).toMatchObject({
        from: 'failed',
        to: 'completed',
        actor: 'admin-api',
        operator: null,
      });
    } finally {
      treasury.setMode({ kind: 'fail', times: Infinity, only: (key) => key.endsWith(':direct') });
      await httpApp.close();
    }
  });
});

describe('POST /api/marketplace/referral-payouts/failed/process', () => {
  const bulk = (target: ReturnType<typeof testApp>, query = '', headers: Record<string, string> = admin) =>
    target.inject({ method: 'POST', url: `/api/marketplace/referral-payouts/failed/process${query}`, headers });

  it('retries every failed purchase through the treasury and reports what is still failed', async () => {
    const httpApp = testApp(t.db, t.url, {
      env: { ADMIN_TOKENS: `alice:${ALICE_TOKEN}` },
      gateway: httpGateway({ treasuryUrl: treasury.url, timeoutMs: 2000 }),
    });
    try {
      const chain = await seedReferralChain(t.db);
      const ids = [await failedPurchase(chain), await failedPurchase(chain), await failedPurchase(chain)];
      const stuck = ids[1]!;
      treasury.setMode({ kind: 'fail', times: Number.POSITIVE_INFINITY, only: (key) => key === `${stuck}:direct` });

      const response = await bulk(httpApp, '?concurrency=2', { authorization: `Bearer ${ALICE_TOKEN}` });
      expect(response.statusCode, response.body).toBe(200);
      const report = response.json();
      const ours = report.results.filter((r: { purchaseId: string }) => ids.includes(r.purchaseId));
      expect(ours).toEqual([
        { purchaseId: ids[0], status: 'completed', error: null },
        { purchaseId: stuck, status: 'failed', error: expect.stringContaining('treasury answered 500') },
        { purchaseId: ids[2], status: 'completed', error: null },
      ]);
      expect(report.total).toBe(report.results.length);
      expect(report.stillFailed).toBe(report.results.filter((r: { status: string }) => r.status === 'failed').length);
      // Grand levels were paid before the run: each was sent once, never again.
      for (const id of ids) expect(treasury.requestsFor(`${id}:grand`)).toBe(1);
      expect(await referralEarnings(t.db, chain.direct.id)).toBe(2 * 1000);
      const events = (
        await app.inject({
          method: 'GET',
          url: `/api/marketplace/purchase/${ids[0]}/referral-payout-status`,
          headers: admin,
        })
      ).json().events;
      expect(events.at(-1)).toMatchObject({ from: 'failed', to: 'completed', actor: 'admin-api', operator: 'alice' });
      // The retry that failed again is alice's too.
      const stuckEvents = (
        await app.inject({
          method: 'GET',
          url: `/api/marketplace/purchase/${stuck}/referral-payout-status`,
          headers: admin,
        })
      ).json().events;
      expect(stuckEvents.at(-1)).toMatchObject({
        from: 'failed',
        to: 'failed',
        actor: 'admin-api',
        operator: 'alice',
        error: expect.stringContaining('treasury answered 500'),
      });
    } finally {
      treasury.setMode({ kind: 'fail', times: Number.POSITIVE_INFINITY, only: (key) => key.endsWith(':direct') });
      await httpApp.close();
    }
  });

  it('refuses a second run while one is going, and bad concurrency, and answers 401 without a token', async () => {
    const chain = await seedReferralChain(t.db);
    await failedPurchase(chain);
    const slowApp = testApp(t.db, t.url, { gateway: httpGateway({ treasuryUrl: treasury.url, timeoutMs: 5000 }) });
    treasury.setMode({ kind: 'slow', delayMs: 1500 });
    try {
      const first = bulk(slowApp);
      await waitFor(() => treasury.inFlight > 0, { what: 'the first run to be transferring' });
      const second = await bulk(slowApp);
      expect(second.statusCode).toBe(409);
      expect(second.json().error.message).toContain('is still running');
      expect((await first).statusCode).toBe(200);
      expect((await bulk(slowApp)).statusCode).toBe(200);
    } finally {
      treasury.setMode({ kind: 'fail', times: Number.POSITIVE_INFINITY, only: (key) => key.endsWith(':direct') });
      await slowApp.close();
    }
    for (const query of ['?concurrency=0', '?concurrency=33', '?concurrency=abc', '?other=1']) {
      const response = await bulk(app, query);
      expect({ query, status: response.statusCode }).toEqual({ query, status: 400 });
    }
    expect((await bulk(app, '', {})).statusCode).toBe(401);
  });
});
