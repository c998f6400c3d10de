/**
 * What a reconciliation run reports, and the tally that builds it: drift counted completely by kind
 * while only the first items are listed, so a large drift keeps the report bounded.
 */

import type { DriftItem, DriftKind } from './drift.ts';
import type { RecordedTransfer } from './record-treasury-transfer.ts';

export interface ReconciliationReport {
  since: string;
  checkedAt: string;
  /** The payout gateway the deployment pays through. */
  gateway: string;
  /** Treasury transfers in the window whose key is ours. */
  treasuryTransfers: number;
  /** Our levels planned or paid in the window. */
  recordedLevels: number;
  /** Drift items by kind, complete even when `drift` lists only the first ones. */
  driftCounts: Record<DriftKind, number>;
  drift: DriftItem[];
  /** More drift than `drift` lists. */
  driftTruncated: boolean;
  /** Unrecorded transfers this run recorded as paid (only when asked to fix), listed up to the cap. */
  fixed: FixedLevel[];
  fixedCount: number;
  /** Why there was nothing to compare, when that is the case. */
  note: string | null;
}

/** An unrecorded transfer this run recorded: the level is paid with the treasury's reference. */
export interface FixedLevel extends RecordedTransfer {
  idempotencyKey: string;
}

/** Drift found and levels fixed so far in one run; lists stop at `maxListed`, counts do not. */
export class DriftTally {
  readonly counts: Record<DriftKind, number> = { unrecorded_transfer: 0, missing_at_treasury: 0, mismatch: 0 };
  readonly #listed: DriftItem[] = [];
  readonly #fixed: FixedLevel[] = [];
  #fixedCount = 0;
  readonly #maxListed: number;

  constructor(maxListed: number) {
    this.#maxListed = maxListed;
  }

  found(item: DriftItem): void {
    this.counts[item.kind]++;
    if (this.#listed.length < this.#maxListed) this.#listed.push(item);
  }

  fixed(level: FixedLevel): void {
    this.#fixedCount++;
    if (this.#fixed.length < this.#maxListed) this.#fixed.push(level);
  }

  get fixedCount(): number {
    return this.#fixedCount;
  }

  get total(): number {
    return this.counts.unrecorded_transfer + this.counts.missing_at_treasury + this.counts.mismatch;
  }

  report(
    run: Pick<
      ReconciliationReport,
      'since' | 'checkedAt' | 'gateway' | 'treasuryTransfers' | 'recordedLevels' | 'note'
    >,
  ): ReconciliationReport {
    return {
      since: run.since,
      checkedAt: run.checkedAt,
      gateway: run.gateway,
      treasuryTransfers: run.treasuryTransfers,
      recordedLevels: run.recordedLevels,
      driftCounts: this.counts,
      drift: this.#listed,
      driftTruncated: this.#listed.length < this.total,
      fixed: this.#fixed,
      fixedCount: this.#fixedCount,
      note: run.note,
    };
  }
}
