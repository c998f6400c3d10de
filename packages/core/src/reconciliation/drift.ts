/**
 * What differs between our books and the treasury's, one level at a time: the key both sides share,
 * the comparison of a level with the transfer under its key, and the drift item it reports. Pure:
 * the run that feeds it is in `reconcile.ts`.
 */

import type { LevelPayoutStatus, PayoutLevel } from '../db/types.ts';
import type { TreasuryTransfer } from './treasury-books.ts';

export type DriftKind = 'unrecorded_transfer' | 'missing_at_treasury' | 'mismatch';
export const DRIFT_KINDS: readonly DriftKind[] = ['unrecorded_transfer', 'missing_at_treasury', 'mismatch'];

/** A purchase's level, the thing an idempotency key names. */
export interface LevelKey {
  purchaseId: string;
  level: PayoutLevel;
}

const OUR_KEY = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(direct|grand)$/;

/** `<purchase id>:<level>` → the level it pays; null for a key that is not ours. */
export function parseIdempotencyKey(key: string): LevelKey | null {
  const match = OUR_KEY.exec(key);
  return match ? { purchaseId: match[1]!, level: match[2] as PayoutLevel } : null;
}

export const keyOf = (row: { purchase_id: string; level: PayoutLevel }) => `${row.purchase_id}:${row.level}`;

/** A level as the reconciliation reads it from our tables. */
export interface RecordedLevelRow {
  purchase_id: string;
  level: PayoutLevel;
  status: LevelPayoutStatus;
  beneficiary_id: string;
  amount: number;
  currency: string;
  reference: string | null;
  paid_at: Date | null;
  /** Another processor holds the purchase's lease: its transfer may be in flight right now. */
  in_flight: boolean;
}

/** A level as we record it. */
export interface RecordedLevel {
  status: LevelPayoutStatus;
  beneficiaryId: string;
  amount: number;
  currency: string;
  reference: string | null;
  paidAt: string | null;
}

export interface DriftItem {
  kind: DriftKind;
  purchaseId: string;
  level: PayoutLevel;
  idempotencyKey: string;
  /** null: we have no such level. */
  ours: RecordedLevel | null;
  /** null: the treasury has no such transfer. */
  treasury: Omit<TreasuryTransfer, 'idempotencyKey'> | null;
  /** Whether `fix` may record it: an unrecorded transfer that matches the level we planned. */
  fixable: boolean;
}

/**
 * The drift between one level and one transfer with the same key, or null when they agree. A level
 * whose purchase holds a payout lease is being transferred right now: its treasury transfer without
 * a recorded payment is expected and not drift.
 */
export function driftBetween(
  key: LevelKey,
  ours: RecordedLevelRow | null,
  transfer: TreasuryTransfer | null,
): DriftItem | null {
  const item = (kind: DriftKind, fixable = false): DriftItem => ({
    kind,
    purchaseId: key.purchaseId,
    level: key.level,
    idempotencyKey: `${key.purchaseId}:${key.level}`,
    ours: ours && recordedLevel(ours),
    treasury: transfer && {
      reference: transfer.reference,
      beneficiaryId: transfer.beneficiaryId,
      amount: transfer.amount,
      currency: transfer.currency,
      createdAt: transfer.createdAt,
    },
    fixable,
  });
  if (transfer === null) return ours?.status === 'paid' ? item('missing_at_treasury') : null;
  const agrees =
    ours !== null &&
    ours.amount === transfer.amount &&
    ours.currency === transfer.currency &&
    ours.beneficiary_id === transfer.beneficiaryId;
  if (ours === null) return item('unrecorded_transfer');
  if (ours.status === 'paid') return agrees ? null : item('mismatch');
  if (ours.in_flight) return null;
  return item('unrecorded_transfer', agrees);
}

function recordedLevel(row: RecordedLevelRow): RecordedLevel {
  return {
    status: row.status,
    beneficiaryId: row.beneficiary_id,
    amount: row.amount,
    currency: row.currency.trim(),
    reference: row.reference,
    paidAt: row.paid_at?.toISOString() ?? null,
  };
}
