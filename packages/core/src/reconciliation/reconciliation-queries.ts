/** The reconciliation's SQL. The treasury keys seen so far live in a session temp table, not in memory. */

import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/database.ts';
import type { Actor, DB } from '../db/types.ts';
import type { LevelKey, RecordedLevelRow } from './drift.ts';
import type { ReconciliationReport } from './reconciliation-report.ts';

/** One connection for the whole run: the temp table of seen keys belongs to its session. */
export type Session = Kysely<DB>;

// No transaction is held while the treasury is read (a run can take minutes), so the table is
// session-scoped and dropped at the end; a broken session drops it with itself.
export async function createSeenTable(session: Session): Promise<void> {
  await sql`create temp table if not exists reconciliation_seen (purchase_id uuid not null, level text not null, primary key (purchase_id, level))`.execute(
    session,
  );
  await sql`truncate reconciliation_seen`.execute(session);
}

export async function dropSeenTable(session: Session): Promise<void> {
  await sql`drop table if exists reconciliation_seen`.execute(session);
}

export async function rememberSeen(session: Session, keys: LevelKey[]): Promise<void> {
  if (keys.length === 0) return;
  await sql`
    insert into reconciliation_seen (purchase_id, level)
    select * from unnest(${keys.map((k) => k.purchaseId)}::uuid[], ${keys.map((k) => k.level)}::text[])
    on conflict do nothing`.execute(session);
}

const levelColumns = sql`l.purchase_id, l.level, l.status, l.beneficiary_id, l.amount, l.currency, l.reference, l.paid_at,
  coalesce(p.referral_payout_lease_until > now(), false) as in_flight`;

/** Our levels for a page of treasury keys; a key we have no level for is simply absent. */
export async function levelsByKey(session: Session, keys: LevelKey[]): Promise<RecordedLevelRow[]> {
  if (keys.length === 0) return [];
  const { rows } = await sql<RecordedLevelRow>`
    select ${levelColumns}
      from unnest(${keys.map((k) => k.purchaseId)}::uuid[], ${keys.map((k) => k.level)}::text[]) as k(purchase_id, level)
      join referral_payouts l on l.purchase_id = k.purchase_id and l.level = k.level
      join purchases p on p.id = l.purchase_id`.execute(session);
  return rows;
}

/**
 * Levels we record as paid since `since` whose key the treasury's listing did not contain, in key
 * order after `after` (keyset paging, so a large result is read a page at a time).
 */
export async function paidLevelsNotSeen(
  session: Session,
  since: Date,
  after: LevelKey | null,
  limit: number,
): Promise<RecordedLevelRow[]> {
  const { rows } = await sql<RecordedLevelRow>`
    select ${levelColumns}
      from referral_payouts l
      join purchases p on p.id = l.purchase_id
     where l.status = 'paid'
       and l.paid_at >= ${since}
       and (l.purchase_id, l.level) > (${after?.purchaseId ?? '00000000-0000-0000-0000-000000000000'}::uuid, ${after?.level ?? ''})
       and not exists (select 1 from reconciliation_seen s where s.purchase_id = l.purchase_id and s.level = l.level)
     order by l.purchase_id, l.level
     limit ${limit}`.execute(session);
  return rows;
}

/** Levels planned or paid in the window. */
export async function countLevelsInWindow(db: Database, since: Date): Promise<number> {
  const row = await db
    .selectFrom('referral_payouts')
    .select(sql<number>`count(*)`.as('n'))
    .where((eb) => eb.or([eb('created_at', '>=', since), eb('paid_at', '>=', since)]))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Keeps a finished run's report: the latest one feeds metrics and the console. */
export async function recordReconciliationRun(db: Database, report: ReconciliationReport, actor: Actor): Promise<void> {
  await db
    .insertInto('reconciliation_runs')
    .values({
      checked_at: report.checkedAt,
      since: report.since,
      gateway: report.gateway,
      actor,
      treasury_transfers: report.treasuryTransfers,
      recorded_levels: report.recordedLevels,
      unrecorded_transfers: report.driftCounts.unrecorded_transfer,
      missing_at_treasury: report.driftCounts.missing_at_treasury,
      mismatches: report.driftCounts.mismatch,
      fixed: report.fixedCount,
      report: JSON.stringify(report),
    })
    .execute();
}

export interface LatestReconciliation {
  finishedAt: Date;
  actor: Actor;
  report: ReconciliationReport;
}

/** The most recent run, or null before the first one. */
export async function latestReconciliation(db: Database): Promise<LatestReconciliation | null> {
  const row = await db
    .selectFrom('reconciliation_runs')
    .select(['finished_at', 'actor', 'report'])
    .orderBy('finished_at', 'desc')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? { finishedAt: row.finished_at, actor: row.actor, report: row.report as ReconciliationReport } : null;
}
