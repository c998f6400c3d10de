/**
 * Money is integer minor units with a 3-letter currency; rates are basis points. Arithmetic goes
 * through bigint so a product like price × bps never loses precision, and every split floors.
 */
export const BPS_DENOMINATOR = 10_000;

/** Largest price accepted: sums over many purchases stay far below 2^53 and fit a bigint column. */
export const MAX_AMOUNT = 1_000_000_000_000;

export function assertMinorUnits(amount: number, what = 'amount'): void {
  if (!Number.isSafeInteger(amount))
    throw new RangeError(`${what} must be an integer number of minor units, got ${amount}`);
}

/** floor(amount × bps / 10000), exact for any safe-integer amount. */
export function applyBps(amount: number, bps: number): number {
  assertMinorUnits(amount);
  if (!Number.isInteger(bps) || bps < 0 || bps > BPS_DENOMINATOR)
    throw new RangeError(`rate must be 0..10000 bps, got ${bps}`);
  return Number((BigInt(amount) * BigInt(bps)) / BigInt(BPS_DENOMINATOR));
}

export interface TreasuryDistribution {
  /** The platform's fee; the creator receives price − fee. */
  platformFee: number;
  creatorShare: number;
}

export function treasuryDistribution(price: number, platformFeeBps: number): TreasuryDistribution {
  const platformFee = applyBps(price, platformFeeBps);
  return { platformFee, creatorShare: price - platformFee };
}

const DECIMALS: Record<string, number> = {
  JPY: 0,
  KRW: 0,
  VND: 0,
  CLP: 0,
  ISK: 0,
  BHD: 3,
  KWD: 3,
  OMR: 3,
  JOD: 3,
  TND: 3,
};

export function currencyDecimals(currency: string): number {
  return DECIMALS[currency] ?? 2;
}

/** "1234 EUR" → "12.34 EUR"; for display only, never parsed back. */
export function formatMoney(amount: number, currency: string): string {
  const decimals = currencyDecimals(currency);
  const negative = amount < 0;
  const digits = Math.abs(amount)
    .toString()
    .padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals);
  const fraction = decimals > 0 ? `.${digits.slice(digits.length - decimals)}` : '';
  return `${negative ? '-' : ''}${whole}${fraction} ${currency}`;
}
