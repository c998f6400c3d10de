import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiClient } from '../src/api-client.ts';

/** A real HTTP server that answers every call with `{}` and records who called what. */
const seen: { route: string; authorization: string | undefined }[] = [];
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  req.resume();
  req.on('end', () => {
    seen.push({ route: `${req.method} ${req.url}`, authorization: req.headers.authorization });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
let baseUrl: string;
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('the demo API client', () => {
  it('calls the marketplace routes with the service token and only the admin routes with the admin token', async () => {
    const api = apiClient(baseUrl, { service: 'service-token-0123456789', admin: 'admin-token-0123456789' });
    await api.signUp('ana');
    await api.createReferralCode('u1', 'ANA');
    await api.createContent('u1', 'Bread', 100, 'EUR');
    await api.createPurchase('u2', 'c1', 'key-1');
    await api.confirmPurchase('p1', 'pay_1');
    await api.getPurchase('p1');
    await api.payoutStatus('p1');
    const service = 'Bearer service-token-0123456789';
    const admin = 'Bearer admin-token-0123456789';
    expect(seen).toEqual([
      { route: 'POST /api/users', authorization: service },
      { route: 'POST /api/referral-codes', authorization: admin },
      { route: 'POST /api/content', authorization: service },
      { route: 'POST /api/marketplace/purchases', authorization: service },
      { route: 'POST /api/marketplace/purchase/p1/confirm', authorization: service },
      { route: 'GET /api/marketplace/purchase/p1', authorization: service },
      { route: 'GET /api/marketplace/purchase/p1/referral-payout-status', authorization: admin },
    ]);
  });
});
