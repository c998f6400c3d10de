import { describe, expect, it } from 'vitest';
import { type Chain, planLevels, transferRequest } from '../src/payouts/plan-levels.ts';

const purchase = { id: 'p1', price: 10_000, currency: 'EUR', platform_fee: 3000 };
const chain: Chain = {
  direct_referrer_id: 'd',
  grand_referrer_id: 'g',
  active: true,
  direct_rate_bps: 1000,
  grand_rate_bps: 500,
};
const amounts = (plan: ReturnType<typeof planLevels>) =>
  plan.levels.map((l) => [l.level, l.beneficiary_id, l.rate_bps, l.amount]);

describe('planLevels', () => {
  it('pays each level floor(price × rate / 10000) of the code the buyer signed up with', () => {
    const plan = planLevels({ ...purchase, price: 10_009 }, chain, 1);
    expect(amounts(plan)).toEqual([
      ['direct', 'd', 1000, 1000],
      ['grand', 'g', 500, 500],
    ]);
    expect(plan.levels.every((l) => l.status === 'pending' && l.currency === 'EUR' && l.purchase_id === 'p1')).toBe(
      true,
    );
  });

  it.each([
    ['free content', { ...purchase, price: 0, platform_fee: 0 }, chain, 'free_content'],
    [
      'no referrer',
      purchase,
      { ...chain, direct_referrer_id: null, grand_referrer_id: null, active: null },
      'no_referrer',
    ],
    ['an inactive code', purchase, { ...chain, active: false }, 'code_inactive'],
  ])('pays nothing for %s', (_name, p, c, reason) => {
    expect(planLevels(p, c, 1)).toEqual({ levels: [], reason });
  });

  it('pays only the direct level without a grand referrer', () => {
    expect(amounts(planLevels(purchase, { ...chain, grand_referrer_id: null }, 1))).toEqual([
      ['direct', 'd', 1000, 1000],
    ]);
  });

  it('skips a level below the minimum payout, and says so when none is left', () => {
    expect(amounts(planLevels(purchase, chain, 600))).toEqual([['direct', 'd', 1000, 1000]]);
    expect(planLevels(purchase, chain, 1001)).toEqual({ levels: [], reason: 'below_minimum' });
  });

  it('never pays more than the platform fee of the purchase, direct level first', () => {
    expect(amounts(planLevels({ ...purchase, platform_fee: 1200 }, chain, 1))).toEqual([
      ['direct', 'd', 1000, 1000],
      ['grand', 'g', 500, 200],
    ]);
    expect(amounts(planLevels({ ...purchase, platform_fee: 800 }, chain, 1))).toEqual([['direct', 'd', 1000, 800]]);
    expect(planLevels({ ...purchase, platform_fee: null }, chain, 1)).toEqual({ levels: [], reason: 'below_minimum' });
  });
});

describe('transferRequest', () => {
  it('keys a level’s transfer by purchase and level, the same on every attempt', () => {
    const [direct, grand] = planLevels(purchase, chain, 1).levels;
    expect(transferRequest(direct!)).toEqual({
      idempotencyKey: 'p1:direct',
      beneficiaryId: 'd',
      amount: 1000,
      currency: 'EUR',
      purchaseId: 'p1',
    });
    expect(transferRequest(grand!).idempotencyKey).toBe('p1:grand');
  });
});
