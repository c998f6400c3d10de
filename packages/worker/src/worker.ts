import { setTimeout as sleep } from 'node:timers/promises';
import { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import {
  type Config,
  createDatabase,
  type Database,
  ensureDeploymentGateway,
  type PayoutGateway,
  payoutContextFromConfig,
  pruneIdempotencyKeys,
} from '@referrals/core';
import { type DatabaseAvailability, databaseAvailability } from './database-availability.ts';
import { createWorkerMetrics, serveMetrics, type WorkerMetrics } from './metrics.ts';
import { ensurePayoutQueues, type PayoutSlots, registerPayoutHandler } from './payout-handler.ts';
import { type Relay, startRelay } from './relay.ts';
import { type StuckSweep, startStuckSweep } from './stuck-sweep.ts';

export interface WorkerTuning {
  /** A job whose worker stops heartbeating is failed and retried after this long (pg-boss minimum 10). */
  heartbeatSeconds: number;
  /** How often pg-boss looks for expired / silent jobs; bounds crash recovery together with the heartbeat. */
  superviseIntervalSeconds: number;
  /** Idle poll of each payout slot (pg-boss minimum 0.5): picks up retries whose backoff elapsed. */
  pollingIntervalSeconds: number;
}

export const DEFAULT_TUNING: WorkerTuning = {
  heartbeatSeconds: 10,
  superviseIntervalSeconds: 2,
  pollingIntervalSeconds: 0.5,
};

export interface StartWorkerOptions {
  config: Config;
  logger: Logger;
  /** Defaults to the gateway the configuration names (PAYOUT_GATEWAY). */
  gateway?: PayoutGateway;
  tuning?: Partial<WorkerTuning>;
  /** Aborts a start that is still waiting for the database (a stop signal before it came back). */
  signal?: AbortSignal;
}

// Backoff between start attempts while the database is unreachable: quick to notice a restart,
// gentle on a database that is down for longer.
const START_RETRY_FIRST_MS = 250;
const START_RETRY_MAX_MS = 5_000;
const KEY_PRUNE_EVERY_MS = 3600_000;

/**
 * Connections of each of the worker's two pools (its own and pg-boss's). Statements are short and
 * no connection is held across a call to the treasury, so a dozen serve any WORKER_CONCURRENCY:
 * more only crowd the database (measured under a 1 s treasury: at 16, pools sized by it took the API
 * and one worker to 48 connections; capped at 12 each, 36).
 */
function poolSize(config: Config): number {
  return Math.min(config.workerConcurrency, 8) + 4;
}

export interface RunningWorker {
  readonly boss: PgBoss;
  readonly db: Database;
  readonly relay: Relay;
  /** Re-enqueues queued purchases whose job is gone (STUCK_QUEUED_*). */
  readonly stuckSweep: StuckSweep;
  readonly metrics: WorkerMetrics;
  readonly availability: DatabaseAvailability;
  /** Where /metrics is served, when WORKER_METRICS_PORT is set. */
  readonly metricsUrl: string | undefined;
  /**
   * Stops taking work, lets the payouts in hand finish for up to `timeoutMs` (pg-boss fails and so
   * re-queues whatever is still running then), and closes every pool.
   */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * Starts one worker: the outbox relay, the payout handler and its dead-letter handler. Any number
 * of workers may run against one database: the relay claims rows with SKIP LOCKED, pg-boss hands
 * each job to one worker, and the payout function itself refuses to pay a level twice.
 */
export async function startWorker(options: StartWorkerOptions): Promise<RunningWorker> {
  const { config } = options;
  const tuning = { ...DEFAULT_TUNING, ...options.tuning };
  const logger = options.logger;
  const availability = databaseAvailability(logger);
  const db = createDatabase(config.databaseUrl, {
    max: poolSize(config),
    applicationName: 'referral-payouts-worker',
  });

  let boss: PgBoss | undefined;
  let relay: Relay | undefined;
  let stuckSweep: StuckSweep | undefined;
  const stopSignal = new AbortController();
  let metricsServer: { url: string; close(): Promise<void> } | undefined;
  let keyPruneTimer: NodeJS.Timeout | undefined;
  try {
    const started = await startPayouts(options, tuning, db, availability, stopSignal.signal);
    boss = started.boss;
    const { metrics, slots } = started;
    relay = startRelay({
      db,
      boss,
      databaseUrl: config.databaseUrl,
      pollIntervalMs: config.outboxPollIntervalMs,
      retentionDays: config.outboxRetentionDays,
      logger,
      availability,
      onPublished: (count) => {
        metrics.outboxPublished.inc(count);
        // The payout queue sends no NOTIFY (see ensurePayoutQueues): the jobs just committed are
        // this process's to fetch at once.
        slots.wake();
      },
    });
    stuckSweep = startStuckSweep({
      db,
      boss,
      logger,
      thresholdSeconds: config.stuckQueuedAfterSeconds,
      intervalSeconds: config.stuckQueuedSweepIntervalSeconds,
      availability,
      onRequeued: (count) => metrics.requeued.inc(count),
    });
    // Expired idempotency keys are forgotten hourly, as the relay prunes the outbox.
    const pruneKeys = () =>
      pruneIdempotencyKeys(db, config.idempotencyKeyTtlHours)
        .then(
          (deleted) =>
            deleted > 0 &&
            logger.info({ deleted, ttlHours: config.idempotencyKeyTtlHours }, 'forgot expired idempotency keys'),
        )
        .catch((error: unknown) => {
          if (!availability.failed(error, 'idempotency key prune'))
            logger.warn({ err: error }, 'pruning idempotency keys failed; trying again later');
        });
    keyPruneTimer = setInterval(pruneKeys, KEY_PRUNE_EVERY_MS).unref();
    void pruneKeys();
    if (config.workerMetricsPort !== undefined) {
      metricsServer = await serveMetrics(metrics, config.host, config.workerMetricsPort);
    }
    logger.info(
      {
        concurrency: config.workerConcurrency,
        gateway: config.payoutGateway,
        retryLimit: config.payoutRetryLimit,
        stuckQueuedAfterSeconds: config.stuckQueuedAfterSeconds,
        metrics: metricsServer?.url,
      },
      'worker started',
    );

    let stopping: Promise<void> | undefined;
    const startedRelay = relay;
    const startedSweep = stuckSweep;
    const startedBoss = boss;
    return {
      boss: startedBoss,
      db,
      relay: startedRelay,
      stuckSweep: startedSweep,
      metrics,
      availability,
      metricsUrl: metricsServer?.url,
      stop(timeoutMs = 10_000) {
        stopping ??= (async () => {
          logger.info({ timeoutMs }, 'worker stopping: finishing payouts in hand');
          clearInterval(keyPruneTimer);
          await startedSweep.stop();
          await startedRelay.stop();
          // Payouts held by the treasury gate go back to the queue now instead of waiting it out.
          stopSignal.abort();
          await startedBoss.stop({ graceful: true, timeout: timeoutMs, close: true });
          await metricsServer?.close();
          await db.destroy();
          logger.info('worker stopped');
        })();
        return stopping;
      },
    };
  } catch (error) {
    clearInterval(keyPruneTimer);
    await stuckSweep?.stop().catch(() => {});
    await relay?.stop().catch(() => {});
    await metricsServer?.close().catch(() => {});
    await boss?.stop({ graceful: false, close: true }).catch(() => {});
    await db.destroy().catch(() => {});
    throw error;
  }
}

/**
 * Starts pg-boss, applies the queue settings and registers the payout handler, retrying with
 * backoff for as long as the database is unreachable: pg-boss's start() fails rather than waits
 * when Postgres is down, and a worker that exits then would need someone to start it again. Each
 * attempt uses a fresh pg-boss instance, since a failed start leaves the old one half-opened.
 */
async function startPayouts(
  options: StartWorkerOptions,
  tuning: WorkerTuning,
  db: Database,
  availability: DatabaseAvailability,
  stopping: AbortSignal,
): Promise<{ boss: PgBoss; metrics: WorkerMetrics; slots: PayoutSlots }> {
  const { config, logger } = options;
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    const startedAt = Date.now();
    const boss = createBoss(config, tuning, logger, availability);
    try {
      // Before anything is paid: this worker's gateway must be the database's (a mismatch is thrown
      // as a configuration error; an unreachable database is waited for like any other start step).
      await ensureDeploymentGateway(db, options.gateway?.name ?? config.payoutGateway, 'worker');
      await boss.start();
      await ensurePayoutQueues(boss, {
        retryLimit: config.payoutRetryLimit,
        retryDelaySeconds: config.payoutRetryDelaySeconds,
        treasuryTimeoutMs: config.treasuryTimeoutMs,
        heartbeatSeconds: tuning.heartbeatSeconds,
      });
      const payouts = payoutContextFromConfig(config, {
        db,
        logger,
        gateway: options.gateway,
        // Transitions happen only once payouts run, after `metrics` below exists.
        onGateTransition: (transition) => metrics.gateTransitions.inc({ from: transition.from, to: transition.to }),
      });
      const metrics = createWorkerMetrics({ db, boss, payouts });
      const slots = await registerPayoutHandler({
        boss,
        payouts,
        logger,
        metrics,
        concurrency: config.workerConcurrency,
        pollingIntervalSeconds: tuning.pollingIntervalSeconds,
        stopping,
      });
      availability.reachable(startedAt);
      return { boss, metrics, slots };
    } catch (error) {
      await boss.stop({ graceful: false, close: true }).catch(() => {});
      if (!availability.failed(error, 'start')) throw error;
      const delay = Math.min(START_RETRY_MAX_MS, START_RETRY_FIRST_MS * 2 ** Math.min(attempt, 5));
      await sleep(delay, undefined, { signal: options.signal });
    }
  }
}

function createBoss(config: Config, tuning: WorkerTuning, logger: Logger, availability: DatabaseAvailability): PgBoss {
  const boss = new PgBoss({
    connectionString: config.databaseUrl,
    application_name: 'referral-payouts-worker',
    // Fetches, completions and heartbeats of the slots, plus supervision.
    max: poolSize(config),
    useListenNotify: true,
    superviseIntervalSeconds: tuning.superviseIntervalSeconds,
    monitorIntervalSeconds: tuning.superviseIntervalSeconds,
    queueCacheIntervalSeconds: Math.max(1, tuning.superviseIntervalSeconds),
    instanceName: 'referral-payouts-worker',
  });
  // During an outage every slot's fetch fails several times a second; that is one state change.
  boss.on('error', (error) => {
    if (!availability.failed(error, 'pg-boss')) logger.error({ err: error }, 'pg-boss error');
  });
  boss.on('warning', (warning) => logger.warn({ warning }, 'pg-boss warning'));
  return boss;
}
