/**
 * Bench-only baseline, the design this product replaces: confirm pays the referrers inside the
 * request (confirm, then the one payout function through the http gateway, then answer). It serves
 * the two routes the load client uses, with the API's paths, so both are driven the same way.
 * A failed payout fails the request, as it did in the naive version.
 *
 *   DATABASE_URL=… PORT=… TREASURY_URL=… node packages/bench/src/sync-confirm-server.ts
 */
import http from 'node:http';
import closeWithGrace from 'close-with-grace';
import { pino } from 'pino';
import {
  confirmPurchase,
  createDatabase,
  createPurchase,
  DomainError,
  httpGateway,
  loadConfig,
  payoutContextFromConfig,
  processReferralPayouts,
} from '@referrals/core';

const config = loadConfig();
if (!config.treasuryUrl) throw new Error('TREASURY_URL is required for the synchronous baseline');
const db = createDatabase(config.databaseUrl, { max: 10, applicationName: 'bench-sync-confirm' });
const payouts = payoutContextFromConfig(config, {
  db,
  logger: pino({ level: 'silent' }),
  gateway: httpGateway({ treasuryUrl: config.treasuryUrl, timeoutMs: config.treasuryTimeoutMs }),
});

const CONFIRM = /^\/api\/marketplace\/purchase\/([0-9a-f-]{36})\/confirm$/;

function send(response: http.ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function route(request: http.IncomingMessage, body: string, response: http.ServerResponse): Promise<void> {
  if (request.method === 'GET' && request.url === '/healthz') return send(response, 200, { status: 'ok' });
  if (request.method === 'POST' && request.url === '/api/marketplace/purchases') {
    const input = JSON.parse(body) as { buyerId: string; contentId: string };
    const { purchase } = await createPurchase(db, { buyerId: input.buyerId, contentId: input.contentId });
    return send(response, 201, purchase);
  }
  const match = request.method === 'POST' ? CONFIRM.exec(request.url ?? '') : null;
  if (match) {
    const { paymentReference } = JSON.parse(body) as { paymentReference: string };
    const { purchase } = await confirmPurchase(
      db,
      { purchaseId: match[1]!, paymentReference },
      { platformFeeBps: config.platformFeeBps },
    );
    if (purchase.referralPayoutStatus === 'queued') {
      const { failure } = await processReferralPayouts(payouts, purchase.id, { actor: 'api' });
      if (failure) return send(response, 502, { error: { code: 'payout_failed', message: failure.message } });
    }
    return send(response, 200, purchase);
  }
  send(response, 404, { error: { code: 'not_found', message: 'no such route' } });
}

const server = http.createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    route(request, Buffer.concat(chunks).toString('utf8'), response).catch((error: unknown) => {
      const code = error instanceof DomainError ? error.code : 'internal';
      send(response, 500, { error: { code, message: String(error) } });
    });
  });
});
server.keepAliveTimeout = 30_000;
server.listen(config.port, config.host);

closeWithGrace(async () => {
  server.close();
  server.closeIdleConnections();
  await db.destroy();
});
