/**
 * Reconciliation: what we recorded against what the treasury did over a window. The comparison of
 * one level is in `drift.ts`, the report in `reconciliation-report.ts`, the SQL in
 * `reconciliation-queries.ts`, the fix in `record-treasury-transfer.ts`; this is the run.
 */

import type { Logger } from 'pino';
import type { Database } from '../db/database.ts';
import type { Actor } from '../db/types.ts';
import { DomainError } from '../errors.ts';
import { driftBetween, keyOf, type LevelKey, parseIdempotencyKey } from './drift.ts';
import { defaultReconcileSince } from './reconcile-window.ts';
import {
  countLevelsInWindow,
  createSeenTable,
  dropSeenTable,
  levelsByKey,
  paidLevelsNotSeen,
  recordReconciliationRun,
  rememberSeen,
  type Session,
} from './reconciliation-queries.ts';
import { DriftTally, type ReconciliationReport } from './reconciliation-report.ts';
import { recordTreasuryTransfer } from './record-treasury-transfer.ts';
import type { TreasuryBooks } from './treasury-books.ts';

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

export const RECONCILE_PAGE_SIZE = 500;
export const RECONCILE_MAX_LISTED = 1000;
const LOOKUPS_AT_ONCE = 8;

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
  const tally = new DriftTally(options.maxListed ?? RECONCILE_MAX_LISTED);
  const finish = async (counted: { treasuryTransfers: number; recordedLevels: number; note: string | null }) => {
    const report = tally.report({
      since: since.toISOString(),
      checkedAt: checkedAt.toISOString(),
      gateway: ctx.gateway,
      ...counted,
    });
    await recordReconciliationRun(ctx.db, report, options.actor);
    return report;
  };

  const books = ctx.treasury;
  if (books === null) {
    return finish({
      treasuryTransfers: 0,
      recordedLevels: await countLevelsInWindow(ctx.db, since),
      note: `payouts go through the ${ctx.gateway} gateway: each transfer is a ledger movement written in the same transaction as its level, so there is no external treasury to differ from`,
    });
  }

  let treasuryTransfers = 0;
  await ctx.db.connection().execute(async (session: Session) => {
    await createSeenTable(session);
    try {
      const run: Run = {
        ctx,
        options,
        books,
        session,
        since,
        tally,
        pageSize: options.pageSize ?? RECONCILE_PAGE_SIZE,
      };
      treasuryTransfers = await compareListing(run);
      treasuryTransfers += await lookUpPaidLevelsNotListed(run);
    } finally {
      await dropSeenTable(session);
    }
  });
  const recordedLevels = await countLevelsInWindow(ctx.db, since);

  ctx.logger.info(
    { since, treasuryTransfers, recordedLevels, driftCounts: tally.counts, fixed: tally.fixedCount },
    'reconciliation finished',
  );
  return finish({ treasuryTransfers, recordedLevels, note: null });
}

interface Run {
  ctx: ReconciliationContext;
  options: ReconcileOptions;
  books: TreasuryBooks;
  session: Session;
  since: Date;
  pageSize: number;
  tally: DriftTally;
}

/**
 * Reads the treasury's listing a page at a time, remembers its keys that are ours and compares each
 * with our level (fixing what may be fixed); returns how many of its transfers were ours.
 */
async function compareListing({ ctx, options, books, session, since, pageSize, tally }: Run): Promise<number> {
  let treasuryTransfers = 0;
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await books.listTransfers({ since, limit: pageSize, cursor });
    const ours = page.items.flatMap((transfer) => {
      const key = parseIdempotencyKey(transfer.idempotencyKey);
      return key ? [{ key, transfer }] : [];
    });
    const keys = ours.map((o) => o.key);
    await rememberSeen(session, keys);
    const recorded = new Map((await levelsByKey(session, keys)).map((row) => [keyOf(row), row]));
    for (const { key, transfer } of ours) {
      const item = driftBetween(key, recorded.get(transfer.idempotencyKey) ?? null, transfer);
      if (!item) continue;
      if (options.fix && item.fixable) {
        const done = await recordTreasuryTransfer(ctx.db, key, transfer, {
          actor: options.actor,
          operator: options.operator,
        });
        if (done) {
          tally.fixed({ ...done, idempotencyKey: item.idempotencyKey });
          continue;
        }
      }
      tally.found(item);
    }
    treasuryTransfers += ours.length;
    pages++;
    options.onProgress?.({ phase: 'treasury', pages, items: treasuryTransfers, drift: tally.total });
    cursor = page.nextCursor;
  } while (cursor !== null);
  return treasuryTransfers;
}

/**
 * Looks up, by key, each of our paid levels the listing did not contain, a page at a time, before
 * calling it missing; returns how many the treasury did have.
 */
async function lookUpPaidLevelsNotListed({ options, books, session, since, pageSize, tally }: Run): Promise<number> {
  let treasuryTransfers = 0;
  let after: LevelKey | null = null;
  let checked = 0;
  let pages = 0;
  for (;;) {
    const unseen = await paidLevelsNotSeen(session, since, after, pageSize);
    if (unseen.length === 0) break;
    for (let i = 0; i < unseen.length; i += LOOKUPS_AT_ONCE) {
      const rows = unseen.slice(i, i + LOOKUPS_AT_ONCE);
      const transfers = await Promise.all(rows.map((row) => books.getTransfer(keyOf(row))));
      rows.forEach((row, j) => {
        const item = driftBetween({ purchaseId: row.purchase_id, level: row.level }, row, transfers[j]!);
        if (item) tally.found(item);
        if (transfers[j] !== null) treasuryTransfers++;
      });
    }
    checked += unseen.length;
    pages++;
    options.onProgress?.({ phase: 'recorded', pages, items: checked, drift: tally.total });
    const last = unseen.at(-1)!;
    after = { purchaseId: last.purchase_id, level: last.level };
  }
  return treasuryTransfers;
}
