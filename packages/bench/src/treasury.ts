/**
 * A local stand-in for the external treasury the `http` payout gateway calls: answers
 * `POST /transfers` after a configurable delay, or fails every call, and deduplicates by
 * Idempotency-Key as the real one does.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TreasuryBehaviour {
  /** Milliseconds before answering. */
  delayMs: number;
  /** Answer every transfer with a 503. */
  fail: boolean;
}

export interface Treasury {
  url: string;
  behaviour: TreasuryBehaviour;
  /** Transfers answered with a reference, and calls answered with a failure. */
  counts: { paid: number; failed: number };
  close(): Promise<void>;
}

export async function startTreasury(behaviour: TreasuryBehaviour = { delayMs: 0, fail: false }): Promise<Treasury> {
  const references = new Map<string, string>();
  const counts = { paid: 0, failed: 0 };
  const state = { ...behaviour };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const answer = () => {
        if (request.method !== 'POST' || request.url !== '/transfers') {
          response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found","message":"no such route"}}');
          return;
        }
        if (state.fail) {
          counts.failed++;
          response.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"code":"unavailable","message":"treasury is down"}}');
          return;
        }
        const key = String(request.headers['idempotency-key'] ?? '');
        let reference = references.get(key);
        if (reference === undefined) {
          reference = `tr_${randomUUID()}`;
          references.set(key, reference);
        }
        counts.paid++;
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ reference }));
      };
      if (state.delayMs > 0) setTimeout(answer, state.delayMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    behaviour: state,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
