/**
 * Prometheus metrics of one API instance, on its own registry (never the global one, so several
 * apps in one process — tests — do not collide). Event counters are incremented by the routes;
 * state gauges are read from the database at scrape time, so they are right whichever process
 * changed the state.
 */
import { sql } from 'kysely';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { countByPayoutStatus, DRIFT_KINDS, latestReconciliation, REFERRAL_PAYOUT_QUEUE, type Database, outboxBacklog, type PayoutResult, readTreasuryGate, type ReferralPayoutStatus, TREASURY_GATE_STATES } from '@referrals/core';

/** pg-boss queue the worker consumes; its depth is read from pg-boss's own table. */


// Payouts and end-to-end lag range from milliseconds (ledger gateway) to minutes (retries).
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const LAG_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

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

  const confirmations = new Counter({
    name: 'referral_confirmations_total',
    help: 'Purchases confirmed, by the referral payout status the confirmation decided',
    labelNames: ['referral_payout_status'],
    registers: [registry],
  });
  const payoutsCompleted = new Counter({
    name: 'referral_payouts_completed_total',
    help: 'Referral payout levels paid by this process',
    labelNames: ['level'],
    registers: [registry],
  });
  const payoutsFailed = new Counter({
    name: 'referral_payouts_failed_total',
    help: 'Referral payout level transfers that failed in this process',
    labelNames: ['level'],
    registers: [registry],
  });
  const payoutDuration = new Histogram({
    name: 'referral_payout_duration_seconds',
    help: 'Duration of one run of the payout function for one purchase in this process',
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const confirmToCompleted = new Histogram({
    name: 'referral_payout_confirm_to_completed_seconds',
    help: 'Time from purchase confirmation to referral payout completion, for payouts completed by this process',
    buckets: LAG_BUCKETS,
    registers: [registry],
  });
  const purchasesByStatus = new Gauge({
    name: 'referral_purchases',
    help: 'Confirmed purchases per referral payout status (read from the database at scrape time)',
    labelNames: ['referral_payout_status'],
    registers: [registry],
  });
  const outboxUnpublished = new Gauge({
    name: 'referral_outbox_unpublished',
    help: 'Outbox rows not yet handed to the payout queue',
    registers: [registry],
  });
  const outboxOldestAge = new Gauge({
    name: 'referral_outbox_oldest_age_seconds',
    help: 'Age of the oldest unpublished outbox row (0 when none)',
    registers: [registry],
  });
  const queueDepth = new Gauge({
    name: 'referral_payout_queue_depth',
    help: `Jobs waiting in the pg-boss queue "${REFERRAL_PAYOUT_QUEUE}" (states created and retry)`,
    registers: [registry],
  });

  const treasuryGate = new Gauge({
    name: 'referral_treasury_gate_state',
    help: 'Treasury gate shared by all workers: 1 for its current state (closed, open, half_open, paused), 0 for the others',
    labelNames: ['state'],
    registers: [registry],
  });

  const reconciliationDrift = new Gauge({
    name: 'referral_reconciliation_drift',
    help: 'Drift items the latest reconciliation with the treasury found, by kind (whichever process ran it; absent before the first run)',
    labelNames: ['kind'],
    registers: [registry],
  });
  const reconciliationFinished = new Gauge({
    name: 'referral_reconciliation_last_run_timestamp_seconds',
    help: 'When the latest reconciliation with the treasury finished (absent before the first run)',
    registers: [registry],
  });

  async function readQueueDepth(): Promise<number> {
    // The worker creates pg-boss's schema on its first start; before that the queue is empty.
    const exists = await sql<{ present: boolean }>`select to_regclass('pgboss.job') is not null as present`.execute(db);
    if (!exists.rows[0]?.present) return 0;
    const depth = await sql<{ n: number }>`
      select count(*) as n from pgboss.job where name = ${REFERRAL_PAYOUT_QUEUE} and state in ('created', 'retry')`.execute(db);
    return Number(depth.rows[0]?.n ?? 0);
  }

  async function refreshGauges(): Promise<void> {
    const [counts, backlog, depth, gate, reconciliation] = await Promise.all([
      countByPayoutStatus(db),
      outboxBacklog(db),
      readQueueDepth(),
      readTreasuryGate(db),
      latestReconciliation(db),
    ]);
    if (reconciliation) {
      for (const kind of DRIFT_KINDS) reconciliationDrift.set({ kind }, reconciliation.report.driftCounts[kind]);
      reconciliationFinished.set(reconciliation.finishedAt.getTime() / 1000);
    }
    for (const state of TREASURY_GATE_STATES) treasuryGate.set({ state }, state === gate.state ? 1 : 0);
    for (const [status, n] of Object.entries(counts)) purchasesByStatus.set({ referral_payout_status: status }, n);
    outboxUnpublished.set(backlog.unpublished);
    outboxOldestAge.set(backlog.oldestAgeSeconds ?? 0);
    queueDepth.set(depth);
  }

  return {
    registry,
    recordConfirmation(status) {
      confirmations.inc({ referral_payout_status: status });
    },
    recordPayoutRun(seconds, result) {
      payoutDuration.observe(seconds);
      for (const paid of result.paid) payoutsCompleted.inc({ level: paid.level });
      for (const level of result.failure?.levels ?? []) payoutsFailed.inc({ level });
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
