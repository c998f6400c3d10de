import { sql } from 'kysely';
import pino from 'pino';
import { expect } from 'vitest';
import { type Database, loadConfig, type PayoutGateway } from '@referrals/core';
import { readInvariants } from '@referrals/testing';
import { buildApp } from '../src/app.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
export const SERVICE_TOKEN = 'test-service-token-0123456789';
/** What the marketplace front end sends on the marketplace routes. */
export const service = { authorization: `Bearer ${SERVICE_TOKEN}` };
export const silent = pino({ level: 'silent' });

export function testApp(
  db: Database,
  url: string,
  options: { env?: Record<string, string>; gateway?: PayoutGateway } = {},
) {
  const config = loadConfig({
    DATABASE_URL: url,
    ADMIN_API_TOKEN: ADMIN_TOKEN,
    SERVICE_API_TOKEN: SERVICE_TOKEN,
    ...options.env,
  });
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
  'reconciliation_runs',
  'idempotency_keys',
  'treasury_gate_events',
  'console_sessions',
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
  expect(report).toMatchObject({
    confirmedWithoutStatus: 0,
    confirmedWithoutLedger: 0,
    paidWithoutCredit: 0,
    queuedWithoutOutbox: 0,
    payoutsOverFee: 0,
    doubleCredits: 0,
  });
}
