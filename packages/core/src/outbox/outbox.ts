import { sql } from 'kysely';
import type { Database, Tx } from '../db/database.ts';

/** LISTEN/NOTIFY channel that wakes the relay when an outbox row commits. */
export const OUTBOX_CHANNEL = 'referral_outbox';

/** Outbox topics and their payloads; the relay maps each topic to a queue. */
export interface OutboxTopics {
  'referral_payout.requested': { purchaseId: string };
}
export type OutboxTopic = keyof OutboxTopics;

export const REFERRAL_PAYOUT_TOPIC = 'referral_payout.requested' satisfies OutboxTopic;

/** The job queue the relay routes referral payouts to: the worker consumes it, the API reports its depth. */
export const REFERRAL_PAYOUT_QUEUE = 'referral-payouts';

export interface OutboxRow<T extends OutboxTopic = OutboxTopic> {
  id: number;
  topic: T;
  aggregateId: string;
  payload: OutboxTopics[T];
  createdAt: Date;
}

/**
 * Wakes relays. Sent after the outbox row's transaction commits, not inside it: a NOTIFY inside a
 * transaction serialises every notifying commit. A lost wake-up costs one poll interval.
 */
export async function notifyOutbox(db: Database): Promise<void> {
  await sql`select pg_notify(${OUTBOX_CHANNEL}, '')`.execute(db);
}

interface Waker {
  inFlight: boolean;
  /** Callers since the NOTIFY in flight was sent: the next one is theirs. */
  next: (() => void)[];
}
const wakers = new WeakMap<Database, Waker>();

/**
 * Wakes relays after outbox rows committed, with at most one NOTIFY in flight per pool: rows
 * committed while one is on its way share the next. A NOTIFY is a commit of its own, and Postgres
 * serialises notifying commits (a global lock held through the commit's WAL flush), so one NOTIFY
 * per confirm would hold confirms to the disk's flush rate; coalesced, a burst costs two. Resolves
 * once a NOTIFY sent after the call has committed; callers need not wait. A failed NOTIFY is
 * dropped: the relay's poll finds the rows.
 */
export function wakeRelays(db: Database): Promise<void> {
  let waker = wakers.get(db);
  if (!waker) {
    waker = { inFlight: false, next: [] };
    wakers.set(db, waker);
  }
  const state = waker;
  const sent = new Promise<void>((resolve) => state.next.push(resolve));
  const send = (): void => {
    const covered = state.next;
    state.next = [];
    state.inFlight = true;
    notifyOutbox(db)
      .catch(() => undefined)
      .finally(() => {
        for (const resolve of covered) resolve();
        // A row that committed while this NOTIFY was on its way may have missed it: one more.
        if (state.next.length > 0) send();
        else state.inFlight = false;
      });
  };
  if (!state.inFlight) send();
  return sent;
}

/**
 * Claims the oldest unpublished rows. SKIP LOCKED lets relays in several processes share the table:
 * a row locked by one relay is invisible to the others until that relay commits it as published.
 */
export async function claimUnpublished(trx: Tx, limit: number): Promise<OutboxRow[]> {
  const rows = await trx
    .selectFrom('outbox')
    .select(['id', 'topic', 'aggregate_id', 'payload', 'created_at'])
    .where('published_at', 'is', null)
    .orderBy('id')
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute();
  return rows.map((r) => ({
    id: r.id,
    topic: r.topic as OutboxTopic,
    aggregateId: r.aggregate_id,
    payload: r.payload as OutboxTopics[OutboxTopic],
    createdAt: r.created_at,
  }));
}

export async function markPublished(trx: Tx, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await trx.updateTable('outbox').set({ published_at: sql`now()` }).where('id', 'in', ids).execute();
}

/**
 * Ids of the oldest published rows past the retention, oldest first by `published_at`: a range read
 * of outbox_published_at_idx that stops at `limit`, however large the outbox has grown.
 */
export function publishedPastRetention(db: Database, retentionDays: number, limit: number) {
  return db
    .selectFrom('outbox')
    .select('id')
    .where('published_at', '<', sql<Date>`now() - make_interval(days => ${retentionDays})`)
    .orderBy('published_at')
    .limit(limit);
}

/**
 * Deletes published rows older than the retention, in batches so no statement holds many locks.
 * Unpublished rows are never touched. Returns how many rows went.
 */
export async function prunePublishedOutbox(db: Database, retentionDays: number, batchSize = 5000): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await db
      .deleteFrom('outbox')
      .where('id', 'in', publishedPastRetention(db, retentionDays, batchSize))
      .executeTakeFirst();
    const deleted = Number(result.numDeletedRows);
    total += deleted;
    if (deleted < batchSize) return total;
  }
}

export interface OutboxBacklog {
  unpublished: number;
  oldestAgeSeconds: number | null;
}

export async function outboxBacklog(db: Database): Promise<OutboxBacklog> {
  const row = await db
    .selectFrom('outbox')
    .select([
      sql<number>`count(*)`.as('unpublished'),
      sql<number | null>`extract(epoch from now() - min(created_at))::float8`.as('oldest'),
    ])
    .where('published_at', 'is', null)
    .executeTakeFirstOrThrow();
  return { unpublished: Number(row.unpublished), oldestAgeSeconds: row.oldest === null ? null : Number(row.oldest) };
}
