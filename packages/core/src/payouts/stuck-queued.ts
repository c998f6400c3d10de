import { type RawBuilder, sql } from 'kysely';
import type { Database, Tx } from '../db/database.ts';
import { REFERRAL_PAYOUT_QUEUE, REFERRAL_PAYOUT_TOPIC } from '../outbox/outbox.ts';

/**
 * Queued purchases nobody will pay: no live pg-boss job (created, retry or active) in the payout
 * queue or its dead-letter queue, and no sign of life for longer than the threshold. A purchase
 * gets there when its job is gone while it is still queued: deleted by hand or by retention, or
 * dead-lettered and the dead-letter handler never marked it failed (its own retries spent during a
 * long outage). Core reads pg-boss's job table with SQL only; the worker re-enqueues.
 *
 * "No sign of life" is measured from the latest of: the purchase being queued, its outbox row being
 * published (the relay creates the job in that same transaction) and the latest event in its
 * history (each attempt appends one, as does each re-enqueue). A purchase whose outbox row is not
 * published yet is never stuck: the relay will create its job (a relay backlog shows as the outbox
 * backlog instead).
 */

export const REFERRAL_PAYOUT_DEAD_LETTER_QUEUE = 'referral-payouts-dead-letter';

/** pg-boss's schema (the worker installs it on its first start with the default name). */
const JOB_TABLE = 'pgboss.job';

/** Advisory lock key: one sweep at a time across every worker; the others skip their turn (see claimStuckQueued). */
export const STUCK_SWEEP_LOCK = 7_286_105;

async function jobTableExists(db: Database | Tx): Promise<boolean> {
  const { rows } = await sql<{ present: boolean }>`select to_regclass(${JOB_TABLE}) is not null as present`.execute(db);
  return rows[0]?.present === true;
}

/** The condition on `p` (purchases) that makes it stuck; without a job table no job is live. */
function stuckCondition(thresholdSeconds: number, withJobTable: boolean): RawBuilder<boolean> {
  const threshold = sql`make_interval(secs => ${thresholdSeconds})`;
  const noLiveJob = withJobTable
    ? sql`and not exists (
        select 1 from pgboss.job j
         where j.name in (${REFERRAL_PAYOUT_QUEUE}, ${REFERRAL_PAYOUT_DEAD_LETTER_QUEUE})
           and j.state in ('created', 'retry', 'active')
           and j.data->>'purchaseId' = p.id::text)`
    : sql``;
  return sql<boolean>`p.referral_payout_status = 'queued'
    and p.referral_payout_queued_at < now() - ${threshold}
    and not exists (
      select 1 from outbox o
       where o.topic = ${REFERRAL_PAYOUT_TOPIC} and o.aggregate_id = p.id
         and (o.published_at is null or o.published_at > now() - ${threshold}))
    and not exists (
      select 1 from referral_payout_events e
       where e.purchase_id = p.id and e.at > now() - ${threshold})
    ${noLiveJob}`;
}

/** How many queued purchases are stuck: what `--summary` and the summary route show. */
export async function countStuckQueued(db: Database, thresholdSeconds: number): Promise<number> {
  const withJobTable = await jobTableExists(db);
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from purchases p where ${stuckCondition(thresholdSeconds, withJobTable)}`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

/**
 * Claims up to `limit` stuck purchases for re-enqueueing in the caller's transaction, appending a
 * `queued → queued` event (actor worker) to each one's history; null when another sweep holds the
 * sweep lock. The caller sends each one a fresh job in the same transaction, so a purchase is
 * re-enqueued exactly when its event commits.
 *
 * Why this cannot create two live jobs for one purchase: the transaction-scoped advisory lock lets
 * one sweep at a time through, and the statement that finds the stuck purchases starts after the
 * lock is granted, so under READ COMMITTED it sees the jobs (and events) a sweep that held the
 * lock before committed. A relay publishing the purchase's outbox row meanwhile creates the job
 * and marks the row published in one transaction: either both are visible or neither is, and an
 * unpublished row rules the purchase out.
 */
export async function claimStuckQueued(
  trx: Tx,
  options: { thresholdSeconds: number; limit: number },
): Promise<string[] | null> {
  const { rows: lock } = await sql<{ locked: boolean }>`
    select pg_try_advisory_xact_lock(${STUCK_SWEEP_LOCK}) as locked`.execute(trx);
  if (!lock[0]?.locked) return null;
  // The worker that sweeps has installed pg-boss; without its table there is nothing to re-enqueue into.
  if (!(await jobTableExists(trx))) return [];
  const note = `re-enqueued: no live payout job for more than ${options.thresholdSeconds} s`;
  const { rows } = await sql<{ id: string }>`
    with stuck as (
      select p.id, p.referral_payout_attempts from purchases p
       where ${stuckCondition(options.thresholdSeconds, true)}
       order by p.referral_payout_queued_at, p.id
       limit ${options.limit}
       for update of p skip locked
    ),
    noted as (
      insert into referral_payout_events (purchase_id, from_status, to_status, actor, attempt, note)
      select id, 'queued', 'queued', 'worker', referral_payout_attempts, ${note} from stuck
    )
    select id from stuck`.execute(trx);
  return rows.map((r) => r.id);
}
