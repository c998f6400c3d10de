import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import pino from 'pino';
import { expect } from 'vitest';
import { type Database, loadConfig, type PayoutGateway } from '@referrals/core';
import { readInvariants } from '@referrals/testing';
import { buildApp } from '../src/app.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
export const silent = pino({ level: 'silent' });

export function testApp(
  db: Database,
  url: string,
  options: { env?: Record<string, string>; gateway?: PayoutGateway } = {},
) {
  const config = loadConfig({ DATABASE_URL: url, ADMIN_API_TOKEN: ADMIN_TOKEN, ...options.env });
  return buildApp({ config, db, logger: silent, gateway: options.gateway });
}

const TABLES = [
  'users',
  'referral_codes',
  'user_referrals',
  'content',
  'purchases',
  'ledger_entries',
  'outbox',
  'referral_payouts',
  'referral_payout_events',
] as const;

/** Row count of every table, to show that a refused request wrote nothing. */
export async function rowCounts(db: Database): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of TABLES) {
    const result = await sql<{ n: number }>`select count(*) as n from ${sql.table(table)}`.execute(db);
    counts[table] = Number(result.rows[0]!.n);
  }
  return counts;
}

/** The invariants of DESIGN.md, checked after every test. */
export async function expectHealthyLedger(db: Database): Promise<void> {
  const report = await readInvariants(db);
  for (const total of Object.values(report.ledgerTotals)) expect(total).toBe(0);
  expect(report).toMatchObject({ confirmedWithoutStatus: 0, queuedWithoutOutbox: 0, payoutsOverFee: 0, doubleCredits: 0 });
}

/** A local treasury that refuses every transfer with a 500, to make real payout failures. */
export async function startFailingTreasury(): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server: Server = createServer((request, response) => {
    count++;
    request.resume();
    request.on('end', () => {
      response.writeHead(500, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: { code: 'treasury_down', message: 'treasury is down for maintenance' } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => count,
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}
