import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '@referrals/core';
import { useTestDatabase } from '@referrals/testing/vitest';
import { expectHealthyLedger, service, testApp } from './support.ts';

const t = useTestDatabase();
let app: ReturnType<typeof testApp>;

beforeAll(async () => {
  app = testApp(t.db, t.url);
});
afterAll(async () => {
  await expectHealthyLedger(t.db);
  await app.close();
});

describe('health', () => {
  it('healthz answers while the process is up; readyz checks the database', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ok' });
  });

  it('answers 503 with Retry-After, never 500, while the database is unreachable', async () => {
    // Nothing listens on port 1: connections are refused at once.
    const deadUrl = 'postgres://postgres@127.0.0.1:1/nowhere';
    const dead = createDatabase(deadUrl, { max: 1 });
    const down = testApp(dead, deadUrl);
    try {
      expect((await down.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      const ready = await down.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.headers['retry-after']).toBe('2');
      expect(ready.json()).toEqual({ status: 'unavailable' });
      // Every route that needs the database tells the client to come back, without the details.
      for (const url of ['/api/marketplace/purchase/00000000-0000-4000-8000-000000000000', '/metrics']) {
        const response = await down.inject({ method: 'GET', url, headers: service });
        expect(response.statusCode, url).toBe(503);
        expect(response.headers['retry-after'], url).toBe('2');
        expect(response.json().error, url).toEqual({
          code: 'service_unavailable',
          message: 'the database is unavailable; retry later',
        });
        expect(response.body, url).not.toContain('ECONNREFUSED');
      }
    } finally {
      await down.close();
      await dead.destroy();
    }
  });
});

describe('OpenAPI', () => {
  it('documents every route at /docs/json and serves the UI at /docs', async () => {
    const spec = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(spec.statusCode).toBe(200);
    const doc = spec.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/api/content',
      '/api/marketplace/purchase/{id}',
      '/api/marketplace/purchase/{id}/confirm',
      '/api/marketplace/purchase/{id}/process-referral-payouts',
      '/api/marketplace/purchase/{id}/referral-payout-status',
      '/api/marketplace/purchase/{id}/write-off-referral-payouts',
      '/api/marketplace/purchases',
      '/api/marketplace/referral-payouts',
      '/api/marketplace/referral-payouts/failed',
      '/api/marketplace/referral-payouts/failed/process',
      '/api/marketplace/referral-payouts/pause',
      '/api/marketplace/referral-payouts/reconciliation',
      '/api/marketplace/referral-payouts/reconciliation/fix',
      '/api/marketplace/referral-payouts/resume',
      '/api/marketplace/referral-payouts/summary',
      '/api/referral-codes',
      '/api/users',
      '/healthz',
      '/metrics',
      '/readyz',
    ]);
    const create = doc.paths['/api/marketplace/purchases'].post;
    expect(create.requestBody.content['application/json'].schema).toMatchObject({
      additionalProperties: false,
      required: ['buyerId', 'contentId'],
    });
    expect(create.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ in: 'header', name: 'idempotency-key' })]),
    );
    expect(doc.paths['/api/marketplace/referral-payouts/failed'].get.security).toEqual([{ adminToken: [] }]);
    expect(doc.paths['/api/marketplace/purchase/{id}/confirm'].post.security).toEqual([
      { serviceToken: [] },
      { adminToken: [] },
    ]);
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['adminToken', 'metricsToken', 'serviceToken']);

    const ui = await app.inject({ method: 'GET', url: '/docs' });
    expect([ui.statusCode, ui.headers['content-type']]).toEqual([200, 'text/html; charset=utf-8']);
    expect(ui.body).toContain('<title>Swagger UI</title>');
  });

  it('answers unknown routes and methods with 404 in the error shape', async () => {
    for (const [method, url] of [
      ['GET', '/nope'],
      ['DELETE', '/api/users'],
      ['PUT', '/api/marketplace/purchases'],
    ] as const) {
      const response = await app.inject({ method, url });
      expect(response.statusCode).toBe(404);
      expect(response.json()).toEqual({ error: { code: 'not_found', message: `no route ${method} ${url}` } });
    }
  });
});
