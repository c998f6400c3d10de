import { describe, expect, it } from 'vitest';
import { applyBps, formatMoney, treasuryDistribution } from '@referrals/core';

describe('money', () => {
  it.each([
    [10_000, 1000, 1000],
    [10_001, 1000, 1000],
    [9, 1000, 0],
    [99, 3000, 29],
    [0, 3000, 0],
    [1_000_000_000_000, 10_000, 1_000_000_000_000],
    // price × bps exceeds 2^53 here; bigint keeps the floor exact
    [999_999_999_999_999, 3333, 333_299_999_999_999],
  ])('floor(%i × %i bps) = %i', (amount, bps, expected) => {
    expect(applyBps(amount, bps)).toBe(expected);
  });

  it('refuses fractional amounts and out-of-range rates', () => {
    expect(() => applyBps(10.5, 100)).toThrow(RangeError);
    expect(() => applyBps(100, 10_001)).toThrow(RangeError);
    expect(() => applyBps(100, 1.5)).toThrow(RangeError);
  });

  it('splits a price so that creator share + fee is the price and the remainder stays with the platform', () => {
    for (const price of [0, 1, 3, 99, 10_001, 123_456_789]) {
      const { platformFee, creatorShare } = treasuryDistribution(price, 3000);
      expect(platformFee + creatorShare).toBe(price);
      expect(platformFee).toBe(Math.floor((price * 3000) / 10_000));
    }
  });

  it('formats minor units with the currency decimals', () => {
    expect(formatMoney(1234, 'EUR')).toBe('12.34 EUR');
    expect(formatMoney(5, 'USD')).toBe('0.05 USD');
    expect(formatMoney(-150, 'EUR')).toBe('-1.50 EUR');
    expect(formatMoney(1500, 'JPY')).toBe('1500 JPY');
    expect(formatMoney(1500, 'KWD')).toBe('1.500 KWD');
  });
});
