import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { getReferralPayoutStatus, ledgerGateway, processReferralPayouts, referralEarnings } from '@referrals/core';
import { confirmedPurchase, readInvariants, seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });

describe('processReferralPayouts with the ledger gateway', () => {
  it('pays direct and grand once, however often it is called', async () => {
    const chain = await seedReferralChain(t.db, { price: 10_001 });
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    expect(purchase.referralPayoutStatus).toBe('queued');
    const ctx = { db: t.db, gateway: ledgerGateway, minPayout: 1, logger };

    const results = await Promise.all(
      [1, 2, 3].map(() => processReferralPayouts(ctx, purchase.id, { actor: 'worker' })),
    );
    expect(results.filter((r) => r.changed)).toHaveLength(1);
    expect(results.every((r) => r.status === 'completed')).toBe(true);

    expect(await referralEarnings(t.db, chain.direct.id)).toBe(1000);
    expect(await referralEarnings(t.db, chain.grand.id)).toBe(500);
    const status = await getReferralPayoutStatus(t.db, purchase.id);
    expect(status.payouts.map((p) => [p.level, p.amount, p.status])).toEqual([
      ['direct', 1000, 'paid'],
      ['grand', 500, 'paid'],
    ]);
    expect(status.events.map((e) => [e.from, e.to, e.actor])).toEqual([
      [null, 'queued', 'api'],
      ['queued', 'completed', 'worker'],
    ]);
    const report = await readInvariants(t.db);
    expect(report.ledgerTotals).toEqual({ EUR: 0 });
    expect(report.doubleCredits).toBe(0);
  });
});
