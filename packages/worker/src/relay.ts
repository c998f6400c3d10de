import pg from 'pg';
import { fromKysely, type JobInsert, type PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import {
  claimUnpublished,
  type Database,
  markPublished,
  OUTBOX_CHANNEL,
  type OutboxRow,
  prunePublishedOutbox,
} from '@referrals/core';
import type { DatabaseAvailability } from './database-availability.ts';
import { OUTBOX_ROUTES, type QueueName } from './queues.ts';

export interface RelayDeps {
  db: Database;
  boss: PgBoss;
  databaseUrl: string;
  /** OUTBOX_POLL_INTERVAL_MS: the fallback when a wake-up is lost. */
  pollIntervalMs: number;
  /** OUTBOX_RETENTION_DAYS: published rows older than this are deleted. */
  retentionDays: number;
  logger: Logger;
  /** Told of every batch that could or could not reach the database. */
  availability?: DatabaseAvailability;
  batchSize?: number;
  onPublished?(count: number): void;
}

export interface Relay {
  /** Publishes every unpublished row now; resolves with how many it published. */
  drain(): Promise<number>;
  /** Stops listening and polling, after the batch in hand commits. */
  stop(): Promise<void>;
}

const DEFAULT_BATCH = 200;
const PRUNE_EVERY_MS = 3600_000;
const RECONNECT_MAX_MS = 10_000;

/**
 * The outbox relay: moves committed outbox rows into pg-boss. Each batch is claimed with
 * FOR UPDATE SKIP LOCKED, sent to pg-boss and marked published in ONE transaction, so a row is
 * published exactly when its job exists; relays in other processes skip the locked rows. Jobs carry
 * the purchase id as their id, so even a replayed row cannot enqueue twice.
 */
export function startRelay(deps: RelayDeps): Relay {
  const log = deps.logger.child({ component: 'outbox-relay' });
  const batchSize = deps.batchSize ?? DEFAULT_BATCH;
  let stopped = false;
  let wakeRequested = true;
  let wakeUp: (() => void) | null = null;

  const wake = () => {
    wakeRequested = true;
    wakeUp?.();
  };

  async function publishBatch(): Promise<{ claimed: number; published: number }> {
    return deps.db.transaction().execute(async (trx) => {
      const rows = await claimUnpublished(trx, batchSize);
      if (rows.length === 0) return { claimed: 0, published: 0 };
      const byQueue = new Map<QueueName, { rows: OutboxRow[]; jobs: JobInsert[] }>();
      for (const row of rows) {
        const route = OUTBOX_ROUTES[row.topic];
        if (!route) {
          // Left unpublished on purpose: a newer relay that knows the topic will pick it up.
          log.error({ outboxId: row.id, topic: row.topic }, 'outbox row has a topic no queue is routed for');
          continue;
        }
        const group = byQueue.get(route.queue) ?? { rows: [], jobs: [] };
        group.rows.push(row);
        group.jobs.push(route.job(row.aggregateId, row.payload));
        byQueue.set(route.queue, group);
      }
      const db = fromKysely(trx);
      const published: number[] = [];
      for (const [queue, group] of byQueue) {
        await deps.boss.insert(queue, group.jobs, { db });
        published.push(...group.rows.map((r) => r.id));
      }
      await markPublished(trx, published);
      return { claimed: rows.length, published: published.length };
    });
  }

  async function drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const { claimed, published } = await publishBatch();
      total += published;
      if (published > 0) {
        deps.onPublished?.(published);
        log.debug({ published }, 'outbox rows published');
      }
      if (claimed < batchSize || stopped) return total;
    }
  }

  const listener = listenForOutbox(deps.databaseUrl, wake, log);

  // Published rows are history once their job exists; without pruning the table only grows.
  const prune = () =>
    prunePublishedOutbox(deps.db, deps.retentionDays)
      .then(
        (deleted) =>
          deleted > 0 && log.info({ deleted, retentionDays: deps.retentionDays }, 'pruned published outbox rows'),
      )
      .catch((error) => log.warn({ err: error }, 'pruning the outbox failed; trying again later'));
  const pruneTimer = setInterval(prune, PRUNE_EVERY_MS).unref();
  void prune();

  const loop = (async () => {
    while (!stopped) {
      wakeRequested = false;
      const startedAt = Date.now();
      try {
        await drain();
        deps.availability?.reachable(startedAt);
      } catch (error) {
        // An outage is logged once by the availability tracker; the poll keeps retrying until it ends.
        if (!deps.availability?.failed(error, 'outbox relay')) {
          log.error({ err: error }, 'outbox relay batch failed; retrying at the next wake-up or poll');
        }
      }
      if (stopped || wakeRequested) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, deps.pollIntervalMs);
        function done() {
          clearTimeout(timer);
          wakeUp = null;
          resolve();
        }
        wakeUp = done;
      });
    }
  })();

  return {
    drain,
    async stop() {
      stopped = true;
      clearInterval(pruneTimer);
      wakeUp?.();
      await listener.close();
      await loop;
    },
  };
}

/**
 * A dedicated connection LISTENing on the outbox channel. It reconnects with backoff after any
 * error and wakes the relay once reconnected, since notifications sent meanwhile are lost.
 */
function listenForOutbox(databaseUrl: string, onNotify: () => void, log: Logger): { close(): Promise<void> } {
  let closed = false;
  let client: pg.Client | null = null;
  let retryTimer: NodeJS.Timeout | null = null;
  let failures = 0;

  const scheduleReconnect = () => {
    if (closed || retryTimer) return;
    const delay = Math.min(RECONNECT_MAX_MS, 250 * 2 ** Math.min(failures, 6));
    failures++;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      void connect();
    }, delay);
  };

  async function connect(): Promise<void> {
    const candidate = new pg.Client({ connectionString: databaseUrl, application_name: 'referral-payouts-relay' });
    let lost = false;
    const onLost = (error?: Error) => {
      if (lost) return;
      lost = true;
      const wasListening = client === candidate;
      if (wasListening) client = null;
      candidate.end().catch(() => {});
      if (closed) return;
      // Logged when a working connection goes, not for each reconnect attempt during an outage.
      if (wasListening) log.warn({ err: error }, 'outbox listener connection lost; reconnecting');
      scheduleReconnect();
    };
    candidate.on('error', onLost);
    candidate.on('end', () => onLost());
    candidate.on('notification', () => onNotify());
    try {
      await candidate.connect();
      await candidate.query(`LISTEN ${OUTBOX_CHANNEL}`);
    } catch (error) {
      onLost(error as Error);
      return;
    }
    if (closed) {
      lost = true;
      await candidate.end().catch(() => {});
      return;
    }
    client = candidate;
    if (failures > 0) log.info({ attempts: failures }, 'outbox listener reconnected');
    failures = 0;
    onNotify();
  }

  void connect();

  return {
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      const current = client;
      client = null;
      await current?.end().catch(() => {});
    },
  };
}
