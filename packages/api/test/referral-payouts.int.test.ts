import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  confirmPurchase,
  createPurchase,
  httpGateway,
  processReferralPayouts,
  referralEarnings,
} from '@referrals/core';
import {
  confirmedPurchase,
  type FakeTreasury,
  seedReferralChain,
  startFakeTreasury,
  type ReferralChain,
  waitFor,
} from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { admin, ADMIN_TOKEN, expectHealthyLedger, rowCounts, service, silent, testApp } from './support.ts';

const t = useTestDatabase();
let app: ReturnType<typeof testApp>;
let treasury: FakeTreasury;

beforeAll(async () => {
  app = testApp(t.db, t.url);
  // Refuses every transfer with a 500, to make real payout failures.
  treasury = await startFakeTreasury({ kind: 'fail', times: Infinity });
});
afterAll(async () => {
  await app.close();
  await treasury.close();
});
afterEach(() => expectHealthyLedger(t.db));

const failingGateway = () => httpGateway({ treasuryUrl: treasury.url, timeoutMs: 2000 });

/** A purchase whose payouts failed for good, made the way the worker's last retry makes one. */
async function failedPurchase(chain: ReferralChain): Promise<string> {
  const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
  expect(
    await processReferralPayouts({ db: t.db, gateway: failingGateway(), minPayout: 1, logger: silent }, purchase.id, {
      actor: 'worker',
      finalAttempt: true,
    }),
  ).toMatchObject({ status: 'failed', failure: { message: expect.any(String) } });
  return purchase.id;
}

const ADMIN_ROUTES: { method: 'GET' | 'POST'; url: (id: string) => string; payload?: object }[] = [
  { method: 'POST', url: (id) => `/api/marketplace/purchase/${id}/process-referral-payouts` },
  { method: 'GET', url: (id) => `/api/marketplace/purchase/${id}/referral-payout-status` },
  { method: 'GET', url: () => '/api/marketplace/referral-payouts/failed' },
  { method: 'GET', url: () => '/api/marketplace/referral-payouts/summary' },
  { method: 'POST', url: () => '/api/marketplace/referral-payouts/pause', payload: { reason: 'incident' } },
  { method: 'POST', url: () => '/api/marketplace/referral-payouts/resume' },
  { method: 'POST', url: () => '/api/referral-codes', payload: { ownerId: '00000000-0000-4000-8000-000000000000' } },
];

describe('admin authentication', () => {
  it('answers 401 without a token, with a wrong token or scheme, and always when ADMIN_API_TOKEN is unset', async () => {
    const chain = await seedReferralChain(t.db);
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    const before = await rowCounts(t.db);
    const unset = testApp(t.db, t.url, { env: { ADMIN_API_TOKEN: '' } });
    try {
      for (const route of ADMIN_ROUTES) {
        const attempts: [typeof app, Record<string, string>][] = [
          [app, {}],
          [app, { authorization: `Bearer ${ADMIN_TOKEN}x` }],
          [app, { authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}` }],
          [app, { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` }],
          [app, { authorization: ADMIN_TOKEN }],
          // The marketplace front end's credential opens no admin route.
          [app, service],
          [unset, admin],
        ];
        for (const [target, headers] of attempts) {
          const response = await target.inject({
            method: route.method,
            url: route.url(purchase.id),
            headers,
            ...(route.payload ? { payload: route.payload } : {}),
          });
          expect({ url: route.url(purchase.id), headers, status: response.statusCode }).toEqual({
            url: route.url(purchase.id),
            headers,
            status: 401,
          });
          expect(response.json().error.code).toBe('unauthorized');
          expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
          if (target === unset) expect(response.json().error.message).toContain('ADMIN_API_TOKEN is not set');
        }
      }
    } finally {
      await unset.close();
    }
    expect(await rowCounts(t.db)).toEqual(before);
    const lowercaseScheme = await app.inject({
      method: 'GET',
      url: '/api/marketplace/referral-payouts/summary',
      headers: { authorization: `bearer ${ADMIN_TOKEN}` },
    });
    expect(lowercaseScheme.statusCode).toBe(200);
  });
});

describe('POST /api/marketplace/purchase/:id/process-referral-payouts', () => {
  it('pays a queued purchase inline once; a second call pays nothing', async () => {
    const chain = await seedReferralChain(t.db, { price: 10_000 });
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    const url = `/api/marketplace/purchase/${purchase.id}/process-referral-payouts`;

    const first = await app.inject({ method: 'POST', url, headers: admin });
    expect(first.statusCode).toBe(200);
    const status = first.json();
    expect(status).toMatchObject({
      purchaseId: purchase.id,
      status: 'completed',
      reason: null,
      attempts: 1,
      lastError: null,
    });
    expect(
      status.payouts.map((p: { level: string; amount: number; status: string; beneficiaryId: string }) => [
        p.level,
        p.amount,
        p.status,
        p.beneficiaryId,
      ]),
    ).toEqual([
      ['direct', 1000, 'paid', chain.direct.id],
      ['grand', 500, 'paid', chain.grand.id],
    ]);
    expect(status.events.map((e: { from: string; to: string; actor: string }) => [e.from, e.to, e.actor])).toEqual([
      [null, 'queued', 'api'],
      ['queued', 'completed', 'admin-api'],
    ]);

    const before = await rowCounts(t.db);
    const second = await app.inject({ method: 'POST', url, headers: admin });
    expect(second.statusCode).toBe(200);
    expect(second.json()).toEqual(status);
    expect(await rowCounts(t.db)).toEqual(before);
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(1000);
    expect(await referralEarnings(t.db, chain.grand.id)).toBe(500);

    const viaStatus = await app.inject({
      method: 'GET',
      url: `/api/marketplace/purchase/${purchase.id}/referral-payout-status`,
      headers: admin,
    });
    expect(viaStatus.statusCode).toBe(200);
    expect(viaStatus.json()).toEqual(status);
  });

  it('pays exactly once when called concurrently', async () => {
    const chain = await seedReferralChain(t.db);
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    const url = `/api/marketplace/purchase/${purchase.id}/process-referral-payouts`;
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => app.inject({ method: 'POST', url, headers: admin })),
    );
    expect(responses.map((r) => [r.statusCode, r.json().status])).toEqual(Array(5).fill([200, 'completed']));
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(1000);
  });

  it('answers 409 for a pending purchase, 404 for an unknown one, 400 for a malformed id', async () => {
    const chain = await seedReferralChain(t.db);
    const { purchase: pending } = await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id });
    const before = await rowCounts(t.db);
    const cases: [string, number, string][] = [
      [pending.id, 409, 'purchase_not_confirmed'],
      ['00000000-0000-4000-8000-000000000000', 404, 'not_found'],
      ['not-a-uuid', 400, 'validation_failed'],
    ];
    for (const [id, status, code] of cases) {
      for (const route of ADMIN_ROUTES.slice(0, 2)) {
        const response = await app.inject({ method: route.method, url: route.url(id), headers: admin });
        // The status view of a pending purchase exists (status null); only processing refuses it.
        if (route.method === 'GET' && status === 409) {
          expect(response.statusCode).toBe(200);
          expect(response.json()).toMatchObject({ purchaseId: id, status: null, payouts: [], events: [] });
          continue;
        }
        expect({ id, url: route.url(id), status: response.statusCode, code: response.json().error.code }).toEqual({
          id,
          url: route.url(id),
          status,
          code,
        });
      }
    }
    expect(await rowCounts(t.db)).toEqual(before);
  });

  it('answers 200 with the recorded failure when the transfer fails, and repairs later', async () => {
    const chain = await seedReferralChain(t.db);
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    const url = `/api/marketplace/purchase/${purchase.id}/process-referral-payouts`;
    const failing = testApp(t.db, t.url, { gateway: failingGateway() });
    try {
      const response = await failing.inject({ method: 'POST', url, headers: admin });
      expect(response.statusCode).toBe(200);
      const status = response.json();
      expect(status).toMatchObject({
        status: 'queued',
        attempts: 1,
        lastError: expect.stringContaining('treasury answered 500'),
      });
      expect(status.payouts.map((p: { status: string }) => p.status)).toEqual(['failed', 'failed']);
      expect(status.events.at(-1)).toMatchObject({ from: 'queued', to: 'queued', actor: 'admin-api', attempt: 1 });

      const metrics = (await failing.inject({ method: 'GET', url: '/metrics' })).body;
      expect(metrics).toContain('referral_payout_levels_total{level="direct",result="failed"} 1');
      expect(metrics).toContain('referral_payout_levels_total{level="grand",result="failed"} 1');
      expect(metrics).toContain('referral_payout_runs_total{outcome="retry"} 1');
    } finally {
      await failing.close();
    }

    // Levels the treasury was asked to pay are not "repaired" through the ledger: nothing moves.
    const throughLedger = await app.inject({ method: 'POST', url, headers: admin });
    expect(throughLedger.statusCode).toBe(409);
    expect(throughLedger.json().error).toMatchObject({
      code: 'gateway_mismatch',
      message: expect.stringContaining('planned for the "http" payout gateway'),
    });
    const unchanged = await app.inject({
      method: 'GET',
      url: `/api/marketplace/purchase/${purchase.id}/referral-payout-status`,
      headers: admin,
    });
    expect(unchanged.json()).toMatchObject({ status: 'queued', attempts: 1 });

    // Through the gateway that planned them, once the treasury answers, they are paid.
    treasury.setMode({ kind: 'succeed' });
    const healthy = testApp(t.db, t.url, { gateway: failingGateway() });
    try {
      const repaired = await healthy.inject({ method: 'POST', url, headers: admin });
      expect(repaired.json()).toMatchObject({ status: 'completed', attempts: 2 });
      expect(repaired.json().payouts.map((p: { status: string }) => p.status)).toEqual(['paid', 'paid']);
    } finally {
      treasury.setMode({ kind: 'fail', times: Infinity });
      await healthy.close();
    }
  });
});

describe('GET /api/marketplace/referral-payouts/failed', () => {
  it('pages newest first and stays correct while new failures arrive', async () => {
    const chain = await seedReferralChain(t.db);
    const already = (
      await app.inject({ method: 'GET', url: '/api/marketplace/referral-payouts/failed?limit=500', headers: admin })
    ).json();
    const original: string[] = [];
    for (let i = 0; i < 5; i++) original.push(await failedPurchase(chain));
    const expectedOrder = [...original].reverse();

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor === null ? 'limit=2' : `limit=2&cursor=${encodeURIComponent(cursor)}`;
      const response = await app.inject({
        method: 'GET',
        url: `/api/marketplace/referral-payouts/failed?${query}`,
        headers: admin,
      });
      expect(response.statusCode).toBe(200);
      const page = response.json();
      expect(page.items.length).toBeLessThanOrEqual(2);
      expect(page.total).toBe(already.total + original.length + 2 * pages);
      seen.push(...page.items.map((item: { purchaseId: string }) => item.purchaseId));
      for (const item of page.items) {
        expect(item).toMatchObject({
          buyerId: chain.buyer.id,
          contentId: chain.content.id,
          price: 10_000,
          currency: 'EUR',
          attempts: 1,
        });
        expect(item.lastError).toContain('treasury answered 500');
      }
      cursor = page.nextCursor;
      pages++;
      // New failures sort before the cursor: they must not shift or repeat later pages.
      await failedPurchase(chain);
      await failedPurchase(chain);
    } while (cursor !== null && pages < 10);

    const ours = seen.filter((id) => original.includes(id));
    expect(ours).toEqual(expectedOrder);
    expect(new Set(seen).size).toBe(seen.length);
    expect(pages).toBe(Math.ceil((already.total + original.length) / 2) || 1);
  });

  it('bounds limit (default 50, 1..500) and refuses bad cursors and unknown parameters with 400', async () => {
    const ok = await app.inject({ method: 'GET', url: '/api/marketplace/referral-payouts/failed', headers: admin });
    expect(ok.statusCode).toBe(200);
    const page = ok.json();
    expect(Object.keys(page)).toEqual(['items', 'nextCursor', 'total']);
    expect(page.items.length).toBe(Math.min(50, page.total));
    expect(
      (await app.inject({ method: 'GET', url: '/api/marketplace/referral-payouts/failed?limit=500', headers: admin }))
        .statusCode,
    ).toBe(200);
    for (const query of [
      'limit=0',
      'limit=501',
      'limit=abc',
      'limit=-1',
      'limit=1.5',
      'limit=',
      'cursor=bm9wZQ',
      'cursor=%5B%5D',
      'page=2',
    ]) {
      const response = await app.inject({
        method: 'GET',
        url: `/api/marketplace/referral-payouts/failed?${query}`,
        headers: admin,
      });
      expect({ query, status: response.statusCode, code: response.json().error?.code }).toEqual({
        query,
        status: 400,
        code: 'validation_failed',
      });
    }
  });
});

describe('GET /api/marketplace/referral-payouts/summary', () => {
  it('counts purchases per status, the queued age and the outbox backlog', async () => {
    const chain = await seedReferralChain(t.db);
    await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    const response = await app.inject({
      method: 'GET',
      url: '/api/marketplace/referral-payouts/summary',
      headers: admin,
    });
    expect(response.statusCode).toBe(200);
    const summary = response.json();
    const counts = await t.db
      .selectFrom('purchases')
      .select(['referral_payout_status as status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('referral_payout_status', 'is not', null)
      .groupBy('referral_payout_status')
      .execute();
    for (const { status, n } of counts) expect(summary.counts[status!]).toBe(Number(n));
    expect(summary.counts.queued).toBeGreaterThan(0);
    expect(summary.oldestQueuedAgeSeconds).toBeGreaterThanOrEqual(0);
    expect(summary.outbox.unpublished).toBeGreaterThan(0);
    expect(summary.failuresLastHour).toBe(summary.counts.failed);
    expect(summary.failuresLastDay).toBe(summary.counts.failed);
    // The five newest failures, as the failed list pages them.
    const newest = await app.inject({
      method: 'GET',
      url: '/api/marketplace/referral-payouts/failed?limit=5',
      headers: admin,
    });
    expect(summary.counts.failed).toBeGreaterThan(0);
    expect(summary.recentFailures).toHaveLength(Math.min(5, summary.counts.failed));
    expect(summary.recentFailures).toEqual(newest.json().items);
    // lastError is whatever an earlier test of this file left, if any: too few failures to open the breaker.
    const { lastError, ...gate } = summary.treasury;
    expect(gate).toEqual({ state: 'closed', since: expect.any(String), reason: null, by: null });
    expect(lastError === null || typeof lastError === 'string').toBe(true);
    // Nothing in this file has been queued for the default 5 minutes.
    expect(summary.stuckQueued).toEqual({ count: 0, afterSeconds: 300 });
  });

  it('counts the queued purchases stuck for longer than STUCK_QUEUED_AFTER_SECONDS', async () => {
    const chain = await seedReferralChain(t.db);
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    // Relayed, and no job exists for it (no worker runs in this file).
    await t.db
      .updateTable('outbox')
      .set({ published_at: new Date() })
      .where('aggregate_id', '=', purchase.id)
      .execute();
    const impatient = testApp(t.db, t.url, { env: { STUCK_QUEUED_AFTER_SECONDS: '1' } });
    try {
      const stuckCount = async () =>
        (
          await impatient.inject({ method: 'GET', url: '/api/marketplace/referral-payouts/summary', headers: admin })
        ).json().stuckQueued;
      await waitFor(async () => (await stuckCount()).count >= 1, { what: 'a stuck purchase in the summary' });
      expect((await stuckCount()).afterSeconds).toBe(1);
    } finally {
      await impatient.close();
    }
  });
});

describe('GET /metrics', () => {
  it('exposes confirmations, payout counters and histograms, state gauges and process metrics', async () => {
    // Its own app: counters belong to one instance and start at zero.
    const app = testApp(t.db, t.url);
    onTestFinished(() => app.close());
    const chain = await seedReferralChain(t.db);
    const { purchase } = await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id });
    const confirm = await app.inject({
      method: 'POST',
      url: `/api/marketplace/purchase/${purchase.id}/confirm`,
      headers: service,
      payload: { paymentReference: 'pay_metrics' },
    });
    expect(confirm.statusCode).toBe(200);
    await app.inject({
      method: 'POST',
      url: `/api/marketplace/purchase/${purchase.id}/process-referral-payouts`,
      headers: admin,
    });
    // A confirmation made elsewhere (the core call) shows in the gauges, which read the database.
    await confirmPurchase(
      t.db,
      {
        purchaseId: (await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id })).purchase.id,
        paymentReference: 'pay_core',
      },
      { platformFeeBps: 3000 },
    );

    const response = await app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    const text = response.body;
    for (const name of [
      'referral_confirmations_total{referral_payout_status="queued"}',
      'referral_payout_levels_total{level="direct",result="paid"}',
      'referral_payout_levels_total{level="grand",result="paid"}',
      'referral_payout_duration_seconds_bucket',
      'referral_payout_confirm_to_completed_seconds_count 1',
      'referral_purchases{referral_payout_status="completed"}',
      'referral_purchases{referral_payout_status="queued"}',
      'referral_outbox_unpublished',
      'referral_outbox_oldest_age_seconds',
      'referral_payout_queue_jobs{queue="referral-payouts",state="queued"} 0',
      'referral_payout_oldest_queued_age_seconds',
      'referral_treasury_gate_state{state="closed"} 1',
      'referral_payout_runs_total{outcome="completed"}',
      'process_cpu_user_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(text, name).toContain(name);
    }
    const queued = await t.db
      .selectFrom('purchases')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('referral_payout_status', '=', 'queued')
      .executeTakeFirstOrThrow();
    expect(text).toContain(`referral_purchases{referral_payout_status="queued"} ${Number(queued.n)}`);
  });
});
