import { Kysely, PostgresDialect } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type DB, loadConfig } from '@referrals/core';
import { seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { buildApp } from '../src/app.ts';
import { admin, rowCounts, SERVICE_TOKEN, service, silent, testApp } from './support.ts';

const t = useTestDatabase();
let app: ReturnType<typeof testApp>;

beforeAll(async () => {
  app = testApp(t.db, t.url);
  await app.ready();
});
afterAll(() => app.close());

const ZERO = '00000000-0000-4000-8000-000000000000';
// Open by design: probes and the API description. Everything else needs a credential.
const OPEN = ['/healthz', '/readyz', '/docs', '/docs/json'];

const MARKETPLACE_ROUTES: { method: 'GET' | 'POST'; url: string; payload?: object }[] = [
  { method: 'POST', url: '/api/users', payload: { handle: 'someone' } },
  { method: 'POST', url: '/api/content', payload: { creatorId: ZERO, title: 'T', price: 1, currency: 'EUR' } },
  { method: 'POST', url: '/api/marketplace/purchases', payload: { buyerId: ZERO, contentId: ZERO } },
  { method: 'POST', url: `/api/marketplace/purchase/${ZERO}/confirm`, payload: { paymentReference: 'p' } },
  { method: 'GET', url: `/api/marketplace/purchase/${ZERO}` },
];

describe('marketplace credentials', () => {
  it('every route but the probes and the docs answers 401 without a credential, and writes nothing', async () => {
    const routes: { method: string; url: string }[] = [];
    const listing = testApp(t.db, t.url);
    listing.addHook('onRoute', (route) => {
      // The console's credential is its session cookie: console.int.test.ts checks its refusals.
      if (route.url.startsWith('/console')) return;
      for (const method of [route.method].flat()) {
        if (method !== 'HEAD' && !route.url.startsWith('/docs/'))
          routes.push({ method, url: route.url.replace(/:id\b/, ZERO) });
      }
    });
    await listing.ready();
    await listing.close();
    const guarded = routes.filter((r) => !OPEN.includes(r.url) && r.url !== '/metrics');
    expect(guarded.length).toBeGreaterThanOrEqual(MARKETPLACE_ROUTES.length + 5);

    const before = await rowCounts(t.db);
    for (const route of guarded) {
      const response = await app.inject({
        method: route.method as 'GET',
        url: route.url,
        payload: route.method === 'GET' ? undefined : {},
      });
      expect({ ...route, status: response.statusCode }).toEqual({ ...route, status: 401 });
      expect(response.json().error.code).toBe('unauthorized');
    }
    for (const url of OPEN) expect((await app.inject({ method: 'GET', url })).statusCode, url).toBeLessThan(400);
    expect(await rowCounts(t.db)).toEqual(before);
  });

  it('takes SERVICE_API_TOKEN or an admin token; refuses a wrong one, and everything when neither is configured', async () => {
    const unset = testApp(t.db, t.url, { env: { ADMIN_API_TOKEN: '', SERVICE_API_TOKEN: '' } });
    const before = await rowCounts(t.db);
    try {
      for (const route of MARKETPLACE_ROUTES) {
        for (const [target, headers, status] of [
          [app, {}, 401],
          [app, { authorization: `Bearer ${SERVICE_TOKEN}x` }, 401],
          [app, { authorization: `Bearer ${SERVICE_TOKEN.slice(0, -1)}` }, 401],
          [app, { authorization: SERVICE_TOKEN }, 401],
          [unset, service, 401],
          // Past the credential check: the request itself is judged (unknown ids, 404 or 422).
          [app, service, 'passed'],
          [app, admin, 'passed'],
        ] as const) {
          const response = await target.inject({
            method: route.method,
            url: route.url,
            headers,
            payload: route.payload,
          });
          const outcome = response.statusCode === 401 ? 401 : 'passed';
          expect({ ...route, headers, outcome }).toEqual({ ...route, headers, outcome: status });
          if (status === 401) expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
          if (target === unset) expect(response.json().error.message).toContain('SERVICE_API_TOKEN is not set');
        }
      }
    } finally {
      await unset.close();
    }
    // Only the 'passed' sign-up wrote a row; nothing was written behind a 401.
    const after = await rowCounts(t.db);
    expect(after.users! - before.users!).toBe(1);
  });

  it('a service token works alone, without any admin token configured', async () => {
    const serviceOnly = testApp(t.db, t.url, { env: { ADMIN_API_TOKEN: '' } });
    try {
      const chain = await seedReferralChain(t.db);
      const created = await serviceOnly.inject({
        method: 'POST',
        url: '/api/marketplace/purchases',
        headers: service,
        payload: { buyerId: chain.buyer.id, contentId: chain.content.id },
      });
      expect(created.statusCode).toBe(201);
      const summary = await serviceOnly.inject({
        method: 'GET',
        url: '/api/marketplace/referral-payouts/summary',
        headers: service,
      });
      expect(summary.statusCode).toBe(401);
    } finally {
      await serviceOnly.close();
    }
  });
});

describe('/metrics', () => {
  it('is open without METRICS_TOKEN, and asks for it when configured', async () => {
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
    const metricsToken = 'metrics-token-0123456789abcdef';
    const guarded = testApp(t.db, t.url, { env: { METRICS_TOKEN: metricsToken } });
    try {
      for (const headers of [{}, admin, { authorization: `Bearer ${metricsToken}x` }]) {
        const response = await guarded.inject({ method: 'GET', url: '/metrics', headers });
        expect(response.statusCode).toBe(401);
      }
      const scraped = await guarded.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: `Bearer ${metricsToken}` },
      });
      expect(scraped.statusCode).toBe(200);
      expect(scraped.body).toContain('referral_purchases');
    } finally {
      await guarded.close();
    }
  });

  it('costs a fixed handful of queries per gauge refresh and none for scrapes within its maximum age', async () => {
    let queries = 0;
    const counted = new Kysely<DB>({
      dialect: new PostgresDialect({ pool: createPool(t.url, { max: 2 }) }),
      log: (event) => {
        if (event.level === 'query') queries++;
      },
    });
    const scraped = buildApp({ config: loadConfig({ DATABASE_URL: t.url }), db: counted, logger: silent });
    try {
      const first = await Promise.all(
        Array.from({ length: 5 }, () => scraped.inject({ method: 'GET', url: '/metrics' })),
      );
      expect(first.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200]);
      const perRefresh = queries;
      expect(perRefresh).toBeGreaterThan(0);
      expect(perRefresh).toBeLessThanOrEqual(8);
      for (let i = 0; i < 20; i++)
        expect((await scraped.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
      expect(queries).toBe(perRefresh);
    } finally {
      await scraped.close();
      await counted.destroy();
    }
  });
});
