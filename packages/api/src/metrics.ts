/**
 * Prometheus metrics of one API instance, on its own registry (never the global one, so several
 * apps in one process — tests — do not collide), named by core's metric vocabulary. Event counters
 * are incremented by the routes; state gauges are read from the database at scrape time, so they
 * are right whichever process changed the state.
 */
import { sql } from 'kysely';
import { collectDefaultMetrics, Registry } from 'prom-client';
import {
  counter,
  type Database,
  DRIFT_KINDS,
  gauge,
  histogram,
  latestReconciliation,
  METRICS,
  type PayoutResult,
  countByPayoutStatus,
  oldestQueuedAgeSeconds,
  outboxBacklog,
  readTreasuryGate,
  REFERRAL_PAYOUT_QUEUE,
  type ReferralPayoutStatus,
  TREASURY_GATE_STATES,
} from '@referrals/core';

export interface ApiMetrics {
  readonly registry: Registry;
  /** A confirmation that wrote something (not a replay), by the referral status it decided. */
  recordConfirmation(status: ReferralPayoutStatus): void;
  /** An inline payout run (admin-api): duration always, levels paid or failed, confirm→completed lag. */
  recordPayoutRun(seconds: number, result: PayoutResult): void;
  /** Renders the exposition text, reading the state gauges from the database when they are older than their maximum age. */
  render(): Promise<string>;
}

/**
 * The state gauges are read at most this often, however many scrapers there are: a scrape costs a
 * fixed handful of aggregate queries or none, never work that grows with scrape frequency.
 */
export const GAUGE_MAX_AGE_MS = 5_000;

export function createApiMetrics(db: Database, options: { gaugeMaxAgeMs?: number } = {}): ApiMetrics {
  const gaugeMaxAgeMs = options.gaugeMaxAgeMs ?? GAUGE_MAX_AGE_MS;
  let gaugesReadAt = Number.NEGATIVE_INFINITY;
  let reading: Promise<void> | undefined;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const confirmations = counter(registry, METRICS.confirmations);
  const payoutRuns = counter(registry, METRICS.payoutRuns);
  const payoutLevels = counter(registry, METRICS.payoutLevels);
  const payoutDuration = histogram(registry, METRICS.payoutDuration);
  const confirmToCompleted = histogram(registry, METRICS.confirmToCompleted);
  const purchases = gauge(registry, METRICS.purchases);
  const oldestQueuedAge = gauge(registry, METRICS.oldestQueuedAge);
  const outboxUnpublished = gauge(registry, METRICS.outboxUnpublished);
  const outboxOldestAge = gauge(registry, METRICS.outboxOldestAge);
  const queueJobs = gauge(registry, METRICS.queueJobs);
  const treasuryGate = gauge(registry, METRICS.treasuryGate);
  const reconciliationDrift = gauge(registry, METRICS.reconciliationDrift);
  const reconciliationFinished = gauge(registry, METRICS.reconciliationFinished);

  async function readQueuedJobs(): Promise<number> {
    // The worker creates pg-boss's schema on its first start; before that the queue is empty.
    const exists = await sql<{ present: boolean }>`select to_regclass('pgboss.job') is not null as present`.execute(db);
    if (!exists.rows[0]?.present) return 0;
    const depth = await sql<{ n: number }>`
      select count(*) as n from pgboss.job where name = ${REFERRAL_PAYOUT_QUEUE} and state in ('created', 'retry')`.execute(
      db,
    );
    return Number(depth.rows[0]?.n ?? 0);
  }

  async function refreshGauges(): Promise<void> {
    const [counts, oldestQueued, outbox, gate, queued, reconciliation] = await Promise.all([
      countByPayoutStatus(db),
      oldestQueuedAgeSeconds(db),
      outboxBacklog(db),
      readTreasuryGate(db),
      readQueuedJobs(),
      latestReconciliation(db),
    ]);
    if (reconciliation) {
      for (const kind of DRIFT_KINDS) reconciliationDrift.set({ kind }, reconciliation.report.driftCounts[kind]);
      reconciliationFinished.set(reconciliation.finishedAt.getTime() / 1000);
    }
    for (const [status, n] of Object.entries(counts)) purchases.set({ referral_payout_status: status }, n);
    oldestQueuedAge.set(oldestQueued ?? 0);
    outboxUnpublished.set(outbox.unpublished);
    outboxOldestAge.set(outbox.oldestAgeSeconds ?? 0);
    queueJobs.set({ queue: REFERRAL_PAYOUT_QUEUE, state: 'queued' }, queued);
    for (const state of TREASURY_GATE_STATES) treasuryGate.set({ state }, state === gate.state ? 1 : 0);
  }

  return {
    registry,
    recordConfirmation(status) {
      confirmations.inc({ referral_payout_status: status });
    },
    recordPayoutRun(seconds, result) {
      const failedLevels = result.failure?.levels ?? [];
      payoutDuration.observe({ outcome: result.failure ? 'error' : result.status }, seconds);
      if (result.failure) payoutRuns.inc({ outcome: result.status === 'failed' ? 'failed' : 'retry' });
      else if (result.changed) payoutRuns.inc({ outcome: result.status });
      for (const paid of result.paid) payoutLevels.inc({ level: paid.level, result: 'paid' });
      for (const level of failedLevels) payoutLevels.inc({ level, result: 'failed' });
      if (result.changed && result.status === 'completed' && result.confirmedAt && result.completedAt) {
        confirmToCompleted.observe(Math.max(0, (result.completedAt.getTime() - result.confirmedAt.getTime()) / 1000));
      }
    },
    async render() {
      if (Date.now() - gaugesReadAt > gaugeMaxAgeMs) {
        // Scrapes that arrive while the gauges are being read wait for that one read.
        reading ??= refreshGauges()
          .then(() => {
            gaugesReadAt = Date.now();
          })
          .finally(() => {
            reading = undefined;
          });
        await reading;
      }
      return registry.metrics();
    },
  };
}
