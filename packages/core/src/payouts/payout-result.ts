import type { PayoutLevel, PurchaseRow, ReferralPayoutStatus } from '../db/types.ts';

/**
 * Where a purchase stands after a payout call:
 * * `completed` / `not_applicable`: settled, by this call or an earlier one (`changed` says which);
 * * `retryable`: this attempt failed and is recorded; the purchase stays `queued` for another try;
 * * `failed`: this attempt failed and the purchase is `failed` (retries spent, or a repair that failed
 *   again); an operator decides what next.
 */
export type PayoutResultStatus = 'completed' | 'not_applicable' | 'failed' | 'retryable';

export interface PaidLevel {
  level: PayoutLevel;
  amount: number;
  currency: string;
}

/** A failed attempt, already recorded as the purchase's attempt and last error. */
export interface PayoutFailure {
  /** The error as recorded in `referral_payout_last_error`. */
  message: string;
  /** Levels whose transfer failed; empty when the attempt failed before any transfer. */
  levels: PayoutLevel[];
  cause: unknown;
}

export interface PayoutResult {
  purchaseId: string;
  status: PayoutResultStatus;
  reason: string | null;
  attempts: number;
  /** False when the purchase was already settled and this call changed nothing. */
  changed: boolean;
  /** Levels this call paid. */
  paid: PaidLevel[];
  /**
   * This call's failed attempt, or null. A failure can come with a settled status: another
   * processor settled the purchase meanwhile, and its result stands.
   */
  failure: PayoutFailure | null;
  confirmedAt: Date | null;
  completedAt: Date | null;
}

/**
 * A purchase that a payout call cannot touch: not found or not confirmed (a DomainError), or an
 * unexpected error that is no payout failure (the database is unreachable, a bug). Nothing is recorded.
 */
export interface PayoutRejection {
  purchaseId: string;
  status: 'rejected';
  error: unknown;
}

/** Nothing is left to pay: the purchase needs neither a worker nor an operator. */
export const isSettled = (status: string | null): status is 'completed' | 'not_applicable' =>
  status === 'completed' || status === 'not_applicable';

/** The result for a purchase row as recorded after this call. */
export function resultOf(
  row: PurchaseRow,
  changed: boolean,
  paid: PaidLevel[],
  failure: PayoutFailure | null = null,
): PayoutResult {
  const recorded: ReferralPayoutStatus = row.referral_payout_status!;
  return {
    purchaseId: row.id,
    status: recorded === 'queued' ? 'retryable' : recorded,
    reason: row.referral_payout_reason,
    attempts: row.referral_payout_attempts,
    changed,
    paid,
    failure,
    confirmedAt: row.confirmed_at,
    completedAt: row.referral_payout_completed_at,
  };
}

export function errorMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > 1000 ? `${message.slice(0, 997)}...` : message;
}

export const rejected = (purchaseId: string, error: unknown): PayoutRejection => ({
  purchaseId,
  status: 'rejected',
  error,
});
