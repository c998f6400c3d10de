import type { PayoutLevel, PurchaseRow, ReferralPayoutRow } from '../db/types.ts';
import type { PayoutGatewayKind } from '../config.ts';
import { DomainError } from '../errors.ts';
import { applyBps } from '../money.ts';
import type { PaidLevel } from './payout-result.ts';
import type { TransferRequest } from './payout-gateway.ts';

/** A level as planned (not yet recorded) or as read back from `referral_payouts`. */
export type LevelToPay = Pick<
  ReferralPayoutRow,
  'purchase_id' | 'level' | 'beneficiary_id' | 'rate_bps' | 'amount' | 'currency' | 'status'
>;

/** A level as recorded in `referral_payouts`, with the gateway that planned it. */
export type RecordedLevel = LevelToPay & Pick<ReferralPayoutRow, 'gateway'>;

/** The buyer's referral chain as captured at sign-up, with its code's rates (all null without one). */
export interface Chain {
  direct_referrer_id: string | null;
  grand_referrer_id: string | null;
  active: boolean | null;
  direct_rate_bps: number | null;
  grand_rate_bps: number | null;
}

export type PlannedPurchase = Pick<PurchaseRow, 'id' | 'price' | 'currency' | 'platform_fee'>;

export interface Plan {
  levels: LevelToPay[];
  /** Why nothing is paid, when `levels` is empty. */
  reason: string;
}

/**
 * The levels a purchase pays, decided once and then fixed in `referral_payouts`: each is
 * floor(price × rate / 10000) with the rates of the code the buyer signed up with, capped so that
 * together they never exceed the fee the platform took at confirm. A level below `minPayout` is
 * skipped.
 */
export function planLevels(purchase: PlannedPurchase, chain: Chain, minPayout: number): Plan {
  if (purchase.price === 0) return { levels: [], reason: 'free_content' };
  if (chain.direct_referrer_id === null) return { levels: [], reason: 'no_referrer' };
  if (!chain.active) return { levels: [], reason: 'code_inactive' };

  let budget = purchase.platform_fee ?? 0;
  const candidates: [PayoutLevel, string | null, number][] = [
    ['direct', chain.direct_referrer_id, chain.direct_rate_bps ?? 0],
    ['grand', chain.grand_referrer_id, chain.grand_rate_bps ?? 0],
  ];
  const levels: LevelToPay[] = [];
  for (const [level, beneficiary, rate] of candidates) {
    if (beneficiary === null) continue;
    const amount = Math.min(applyBps(purchase.price, rate), budget);
    if (amount < minPayout) continue;
    budget -= amount;
    levels.push({
      purchase_id: purchase.id,
      level,
      beneficiary_id: beneficiary,
      rate_bps: rate,
      amount,
      currency: purchase.currency,
      status: 'pending',
    });
  }
  return { levels, reason: 'below_minimum' };
}

/** The transfer of one level. Its idempotency key `<purchase id>:<level>` never changes between attempts. */
export function transferRequest(level: LevelToPay): TransferRequest {
  return {
    idempotencyKey: `${level.purchase_id}:${level.level}`,
    beneficiaryId: level.beneficiary_id,
    amount: level.amount,
    currency: level.currency,
    purchaseId: level.purchase_id,
  };
}

export const paidLevel = (level: LevelToPay): PaidLevel => ({
  level: level.level,
  amount: level.amount,
  currency: level.currency,
});

/**
 * A level is settled only through the gateway that planned it: a `ledger` credit for a level the
 * treasury was asked to pay (or the reverse) would record money that never moved, or move it twice.
 * Null when every unpaid level belongs to `gateway`.
 */
export function foreignLevels(levels: RecordedLevel[], gateway: PayoutGatewayKind): DomainError | null {
  const foreign = levels.filter((l) => l.status !== 'paid' && l.gateway !== gateway);
  if (foreign.length === 0) return null;
  const planned = foreign[0]!.gateway;
  return new DomainError(
    'gateway_mismatch',
    `purchase ${foreign[0]!.purchase_id}: ${foreign.map((l) => l.level).join(' and ')} level${foreign.length > 1 ? 's were' : ' was'} planned for the "${planned}" payout gateway; this process pays through "${gateway}", so nothing was transferred (settle it with PAYOUT_GATEWAY=${planned})`,
  );
}

/** Only a confirmed purchase, whose confirmation decided a payout status, earns referral payouts. */
export const isConfirmed = (purchase: Pick<PurchaseRow, 'status' | 'referral_payout_status'>) =>
  purchase.status === 'confirmed' && purchase.referral_payout_status !== null;

export const notConfirmed = (purchaseId: string) =>
  new DomainError(
    'purchase_not_confirmed',
    `purchase ${purchaseId} is not confirmed yet; only confirmed purchases earn referral payouts`,
  );
