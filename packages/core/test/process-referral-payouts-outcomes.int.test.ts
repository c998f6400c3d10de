import { describe, expect, it } from 'vitest';
import pino from 'pino';
import {
  getReferralPayoutStatus,
  ledgerGateway,
  processReferralPayouts,
  referralEarnings,
  setReferralCodeActive,
} from '@referrals/core';
import { type ChainOptions, confirmedPurchase, readInvariants, seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });

interface Case {
  name: string;
  chain: ChainOptions;
  minPayout?: number;
  deactivateCode?: boolean;
  /** Status confirm decided, before any payout step. */
  confirmed: string;
  status: string;
  reason: string | null;
  /** [level, amount] paid, in level order. */
  paid: [string, number][];
}

const cases: Case[] = [
  {
    name: 'direct and grand',
    chain: { price: 10_001 },
    confirmed: 'queued',
    status: 'completed',
    reason: null,
    paid: [
      ['direct', 1000],
      ['grand', 500],
    ],
  },
  {
    name: 'direct only (referrer has no referrer)',
    chain: { price: 10_000, withGrand: false },
    confirmed: 'queued',
    status: 'completed',
    reason: null,
    paid: [['direct', 1000]],
  },
  {
    name: 'per-code tier rates',
    chain: { price: 9_999, directRateBps: 2000, grandRateBps: 1000 },
    confirmed: 'queued',
    status: 'completed',
    reason: null,
    paid: [
      ['direct', 1999],
      ['grand', 999],
    ],
  },
  {
    name: 'free content',
    chain: { price: 0 },
    confirmed: 'not_applicable',
    status: 'not_applicable',
    reason: 'free_content',
    paid: [],
  },
  {
    name: 'both levels below the minimum',
    chain: { price: 9 },
    confirmed: 'queued',
    status: 'not_applicable',
    reason: 'below_minimum',
    paid: [],
  },
  {
    name: 'grand level below the minimum',
    chain: { price: 19 },
    confirmed: 'queued',
    status: 'completed',
    reason: null,
    paid: [['direct', 1]],
  },
  {
    name: 'minimum payout raised',
    chain: { price: 10_000 },
    minPayout: 600,
    confirmed: 'queued',
    status: 'completed',
    reason: null,
    paid: [['direct', 1000]],
  },
  {
    name: 'inactive referral code',
    chain: { price: 10_000 },
    deactivateCode: true,
    confirmed: 'queued',
    status: 'not_applicable',
    reason: 'code_inactive',
    paid: [],
  },
];

describe('processReferralPayouts outcomes', () => {
  it.each(cases)('$name', async (c) => {
    const chain = await seedReferralChain(t.db, c.chain);
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    expect(purchase.referralPayoutStatus).toBe(c.confirmed);
    if (c.deactivateCode) await setReferralCodeActive(t.db, chain.directCode.code, false);

    const ctx = { db: t.db, gateway: ledgerGateway, minPayout: c.minPayout ?? 1, logger };
    const outcome = await processReferralPayouts(ctx, purchase.id, { actor: 'worker' });
    expect([outcome.status, outcome.reason]).toEqual([c.status, c.reason]);
    expect(outcome.changed).toBe(c.confirmed === 'queued');
    expect(outcome.paid.map((p) => [p.level, p.amount])).toEqual(c.paid);

    const status = await getReferralPayoutStatus(t.db, purchase.id);
    expect(status.payouts.map((p) => [p.level, p.amount, p.status])).toEqual(
      c.paid.map(([level, amount]) => [level, amount, 'paid']),
    );
    const expected = Object.fromEntries(c.paid);
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(expected.direct ?? 0);
    expect(await referralEarnings(t.db, chain.grand.id)).toBe(expected.grand ?? 0);

    // Settled: a second call changes nothing and pays nothing.
    const again = await processReferralPayouts(ctx, purchase.id, { actor: 'cli' });
    expect([again.status, again.changed, again.paid]).toEqual([c.status, false, []]);
    const report = await readInvariants(t.db);
    expect(report.ledgerTotals).toEqual({ EUR: 0 });
    expect(report).toMatchObject({
      confirmedWithoutLedger: 0,
      paidWithoutCredit: 0,
      doubleCredits: 0,
      payoutsOverFee: 0,
    });
  });
});
