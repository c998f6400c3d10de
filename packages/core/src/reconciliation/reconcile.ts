import type { Logger } from 'pino';
import type { Database } from '../db/database.ts';
import type { Actor, LevelPayoutStatus, PayoutLevel } from '../db/types.ts';
import { DomainError } from '../errors.ts';
import {
  countLevelsInWindow,
  createSeenTable,
  dropSeenTable,
  type LevelKey,
  levelsByKey,
  paidLevelsNotSeen,
  type RecordedLevelRow,
  recordReconciliationRun,
  rememberSeen,
  type Session,
} from './reconciliation-queries.ts';
import { type RecordedTransfer, recordTreasuryTransfer } from './record-treasury-transfer.ts';
import type { TreasuryBooks, TreasuryTransfer } from './treasury-books.ts';

export type DriftKind = 'unrecorded_transfer' | 'missing_at_treasury' | 'mismatch';
export const DRIFT_KINDS: readonly DriftKind[] = ['unrecorded_transfer', 'missing_at_treasury', 'mismatch'];

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

export interface ReconcileProgress {
  phase: 'treasury' | 'recorded';
  pages: number;
  /** Treasury transfers read, or our paid levels the listing did not contain, so far. */
  items: number;
  drift: number;
}

export interface ReconciliationContext {
  db: Database;
  /** The treasury's books; null when the deployment pays through the in-database ledger gateway. */
  treasury: TreasuryBooks | null;
  gateway: string;
  logger: Logger;
}

export interface ReconcileOptions {
  /** Who runs it: the run is kept under this actor, and so are its repairs. */
  actor: Actor;
  /** The named operator who asked, when known; kept with each repair. */
  operator?: string | null;
  /**
   * Record each unrecorded transfer that matches the level we planned as that level's payment. No
   * money moves: this only writes down what the treasury already did. Everything else is reported.
   */
  fix?: boolean;
  since?: Date;
  /** Treasury page size (the treasury may cap it). */
  pageSize?: number;
  /** How many drift items the report lists; the counts stay complete. */
  maxListed?: number;
  onProgress?: (progress: ReconcileProgress) => void;
}

export const RECONCILE_DEFAULT_WINDOW_DAYS = 7;
export const RECONCILE_PAGE_SIZE = 500;
export const RECONCILE_MAX_LISTED = 1000;
const LOOKUPS_AT_ONCE = 8;

const OUR_KEY = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(direct|grand)$/;

/** `<purchase id>:<level>` → the level it pays; null for a key that is not ours. */
export function parseIdempotencyKey(key: string): LevelKey | null {
  const match = OUR_KEY.exec(key);
  return match ? { purchaseId: match[1]!, level: match[2] as PayoutLevel } : null;
}

export function defaultReconcileSince(now = new Date()): Date {
  return new Date(now.getTime() - RECONCILE_DEFAULT_WINDOW_DAYS * 86_400_000);
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The start of a reconciliation window as an operator writes it: a UTC date (`2026-11-20`) or an
 * ISO-8601 time with its offset. Anything else, a day that does not exist or a time in the future
 * is a validation error.
 */
export function parseReconcileSince(text: string, now = new Date()): Date {
  const value = text.trim();
  const date = DATE.test(value) ? new Date(`${value}T00:00:00Z`) : DATE_TIME.test(value) ? new Date(value) : undefined;
  if (
    date === undefined ||
    Number.isNaN(date.getTime()) ||
    (DATE.test(value) && date.toISOString().slice(0, 10) !== value)
  ) {
    throw new DomainError(
      'validation_failed',
      `since must be a date (2026-11-20) or an ISO-8601 time with offset (2026-11-20T08:00:00Z), got "${text}"`,
    );
  }
  if (date > now) throw new DomainError('validation_failed', `since ${date.toISOString()} is in the future`);
  return date;
}

/**
 * Compares what we recorded with what the treasury did over a window and reports every difference.
 *
 * Memory stays bounded whatever the window: the treasury is read a page at a time, each page is
 * compared with our levels for its keys in one query, and the keys seen go to a temp table in
 * Postgres. Our paid levels the listing did not contain are then read a page at a time and each is
 * looked up by key before it is called missing: the listing window is by the treasury's clock, and a
 * transfer made while the run read can be past its end.
 *
 * A level whose purchase holds a payout lease is being transferred right now; its treasury transfer
 * without a recorded payment is expected and not reported.
 *
 * With `fix`, each unrecorded transfer that matches the level we planned is recorded as it is found
 * (recordTreasuryTransfer); the report then lists it under `fixed` instead of `drift`.
 */
export async function reconcile(ctx: ReconciliationContext, options: ReconcileOptions): Promise<ReconciliationReport> {
  const checkedAt = new Date();
  const since = options.since ?? defaultReconcileSince(checkedAt);
  if (Number.isNaN(since.getTime())) throw new DomainError('validation_failed', 'since is not a valid date');
  if (since > checkedAt) throw new DomainError('validation_failed', `since ${since.toISOString()} is in the future`);
  const pageSize = options.pageSize ?? RECONCILE_PAGE_SIZE;
  const maxListed = options.maxListed ?? RECONCILE_MAX_LISTED;

  const driftCounts: Record<DriftKind, number> = { unrecorded_transfer: 0, missing_at_treasury: 0, mismatch: 0 };
  const drift: DriftItem[] = [];
  const fixed: FixedLevel[] = [];
  let fixedCount = 0;
  const finish = async (): Promise<ReconciliationReport> => {
    const finished = report();
    await recordReconciliationRun(ctx.db, finished, options.actor);
    return finished;
  };
  const report = (): ReconciliationReport => ({
    since: since.toISOString(),
    checkedAt: checkedAt.toISOString(),
    gateway: ctx.gateway,
    treasuryTransfers,
    recordedLevels,
    driftCounts,
    drift,
    driftTruncated: drift.length < totalDrift(),
    fixed,
    fixedCount,
    note,
  });
  const totalDrift = () => driftCounts.unrecorded_transfer + driftCounts.missing_at_treasury + driftCounts.mismatch;
  const found = (item: DriftItem) => {
    driftCounts[item.kind]++;
    if (drift.length < maxListed) drift.push(item);
  };

  let treasuryTransfers = 0;
  let recordedLevels = 0;
  let note: string | null = null;

  const books = ctx.treasury;
  if (books === null) {
    recordedLevels = await countLevelsInWindow(ctx.db, since);
    note = `payouts go through the ${ctx.gateway} gateway: each transfer is a ledger movement written in the same transaction as its level, so there is no external treasury to differ from`;
    return finish();
  }

  await ctx.db.connection().execute(async (session: Session) => {
    await createSeenTable(session);
    try {
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await books.listTransfers({ since, limit: pageSize, cursor });
        const ours = page.items.flatMap((transfer) => {
          const key = parseIdempotencyKey(transfer.idempotencyKey);
          return key ? [{ key, transfer }] : [];
        });
        await rememberSeen(
          session,
          ours.map((o) => o.key),
        );
        const recorded = new Map(
          (
            await levelsByKey(
              session,
              ours.map((o) => o.key),
            )
          ).map((row) => [keyOf(row), row]),
        );
        for (const { key, transfer } of ours) {
          const item = compare(key, recorded.get(transfer.idempotencyKey) ?? null, transfer);
          if (!item) continue;
          if (options.fix && item.fixable) {
            const done = await recordTreasuryTransfer(ctx.db, key, transfer, {
              actor: options.actor,
              operator: options.operator,
            });
            if (done) {
              fixedCount++;
              if (fixed.length < maxListed) fixed.push({ ...done, idempotencyKey: item.idempotencyKey });
              continue;
            }
          }
          found(item);
        }
        treasuryTransfers += ours.length;
        pages++;
        options.onProgress?.({ phase: 'treasury', pages, items: treasuryTransfers, drift: totalDrift() });
        cursor = page.nextCursor;
      } while (cursor !== null);

      let after: LevelKey | null = null;
      let checked = 0;
      pages = 0;
      for (;;) {
        const unseen = await paidLevelsNotSeen(session, since, after, pageSize);
        if (unseen.length === 0) break;
        for (let i = 0; i < unseen.length; i += LOOKUPS_AT_ONCE) {
          const rows = unseen.slice(i, i + LOOKUPS_AT_ONCE);
          const transfers = await Promise.all(rows.map((row) => books.getTransfer(keyOf(row))));
          rows.forEach((row, j) => {
            const item = compare({ purchaseId: row.purchase_id, level: row.level }, row, transfers[j]!);
            if (item) found(item);
            if (transfers[j] !== null) treasuryTransfers++;
          });
        }
        checked += unseen.length;
        pages++;
        options.onProgress?.({ phase: 'recorded', pages, items: checked, drift: totalDrift() });
        const last = unseen.at(-1)!;
        after = { purchaseId: last.purchase_id, level: last.level };
      }
    } finally {
      await dropSeenTable(session);
    }
  });
  recordedLevels = await countLevelsInWindow(ctx.db, since);

  ctx.logger.info(
    { since, treasuryTransfers, recordedLevels, driftCounts, fixed: fixedCount },
    'reconciliation finished',
  );
  return finish();
}

const keyOf = (row: { purchase_id: string; level: PayoutLevel }) => `${row.purchase_id}:${row.level}`;

/** The drift between one level and one transfer with the same key, or null when they agree. */
function compare(key: LevelKey, ours: RecordedLevelRow | null, transfer: TreasuryTransfer | null): DriftItem | null {
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
