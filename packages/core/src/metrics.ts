import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { withGeneratedSection } from './config-table.ts';

/**
 * The one metric vocabulary: every metric the API and the worker expose, with its labels and
 * buckets, defined once so both processes name a thing the same way, dashboards and alert rules
 * (docker/observability) match either, and README's table (`pnpm docs:metrics`) lists them all.
 * A new metric is one entry here; `counter`, `gauge` and `histogram` register it on a process's
 * registry.
 */
export interface MetricDefinition<L extends string = string> {
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  /** Which process exposes it, for README. */
  readonly exposedBy: 'api' | 'worker' | 'api, worker';
  readonly buckets?: readonly number[];
}

// A payout takes milliseconds with the ledger gateway and up to the treasury timeout with http.
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
// Confirm → completed spans milliseconds (first attempt) to an hour (retries with backoff).
const LAG_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export const METRICS = {
  confirmations: {
    type: 'counter',
    name: 'referral_confirmations_total',
    help: 'Purchases confirmed (replays excluded), by the referral payout status the confirmation decided (queued, not_applicable)',
    labelNames: ['referral_payout_status'],
    exposedBy: 'api',
  },
  payoutRuns: {
    type: 'counter',
    name: 'referral_payout_runs_total',
    help: 'Runs of the payout function for one purchase that changed it, by outcome: completed, not_applicable, retry (an attempt failed, retries remain), failed (final: retries spent, an operator must act)',
    labelNames: ['outcome'],
    exposedBy: 'api, worker',
  },
  payoutLevels: {
    type: 'counter',
    name: 'referral_payout_levels_total',
    help: 'Referral payout levels transferred, by level (direct, grand) and result (paid, failed)',
    labelNames: ['level', 'result'],
    exposedBy: 'api, worker',
  },
  payoutDuration: {
    type: 'histogram',
    name: 'referral_payout_duration_seconds',
    help: "Time one run of the payout function took for one purchase, by outcome (the run's status, or error)",
    labelNames: ['outcome'],
    exposedBy: 'api, worker',
    buckets: DURATION_BUCKETS,
  },
  confirmToCompleted: {
    type: 'histogram',
    name: 'referral_payout_confirm_to_completed_seconds',
    help: "Time from a purchase's confirmation to its referral payouts completing",
    labelNames: [],
    exposedBy: 'api, worker',
    buckets: LAG_BUCKETS,
  },
  payoutRequeued: {
    type: 'counter',
    name: 'referral_payout_requeued_total',
    help: 'Queued purchases the stuck sweep gave a fresh payout job: no live job and no activity for longer than STUCK_QUEUED_AFTER_SECONDS',
    labelNames: [],
    exposedBy: 'worker',
  },
  outboxPublished: {
    type: 'counter',
    name: 'referral_outbox_published_total',
    help: 'Outbox rows the relay handed to the payout queue',
    labelNames: [],
    exposedBy: 'worker',
  },
  purchases: {
    type: 'gauge',
    name: 'referral_purchases',
    help: 'Confirmed purchases per referral payout status (read from the database at scrape time)',
    labelNames: ['referral_payout_status'],
    exposedBy: 'api',
  },
  oldestQueuedAge: {
    type: 'gauge',
    name: 'referral_payout_oldest_queued_age_seconds',
    help: 'Age of the oldest purchase whose referral payout is queued (0 when none)',
    labelNames: [],
    exposedBy: 'api',
  },
  outboxUnpublished: {
    type: 'gauge',
    name: 'referral_outbox_unpublished',
    help: 'Outbox rows not yet handed to the payout queue',
    labelNames: [],
    exposedBy: 'api, worker',
  },
  outboxOldestAge: {
    type: 'gauge',
    name: 'referral_outbox_oldest_age_seconds',
    help: 'Age of the oldest unpublished outbox row (0 when none)',
    labelNames: [],
    exposedBy: 'api',
  },
  queueJobs: {
    type: 'gauge',
    name: 'referral_payout_queue_jobs',
    help: 'Jobs in the payout queues by queue and state: queued (waiting or waiting to retry), active, failed (the worker adds active and failed from pg-boss counts)',
    labelNames: ['queue', 'state'],
    exposedBy: 'api, worker',
  },
  treasuryGate: {
    type: 'gauge',
    name: 'referral_treasury_gate_state',
    help: 'Treasury gate shared by all workers: 1 for its current state (closed, open = circuit breaker tripped, half_open, paused = held by an operator), 0 for the others',
    labelNames: ['state'],
    exposedBy: 'api, worker',
  },
  treasuryGateTransitions: {
    type: 'counter',
    name: 'referral_treasury_gate_transitions_total',
    help: 'Treasury gate transitions made by this worker (from, to): the breaker opening, probing, closing; each is made, and counted, by one process only',
    labelNames: ['from', 'to'],
    exposedBy: 'worker',
  },
  treasuryTransfersInFlight: {
    type: 'gauge',
    name: 'referral_treasury_transfers_in_flight',
    help: 'Transfers this worker has on the wire to the treasury (at most TREASURY_MAX_IN_FLIGHT)',
    labelNames: [],
    exposedBy: 'worker',
  },
  treasuryTransfersWaiting: {
    type: 'gauge',
    name: 'referral_treasury_transfers_waiting',
    help: "Transfers waiting for one of this worker's TREASURY_MAX_IN_FLIGHT slots",
    labelNames: [],
    exposedBy: 'worker',
  },
  reconciliationDrift: {
    type: 'gauge',
    name: 'referral_reconciliation_drift',
    help: 'Drift items the latest reconciliation with the treasury found, by kind (whichever process ran it; absent before the first run)',
    labelNames: ['kind'],
    exposedBy: 'api',
  },
  reconciliationFinished: {
    type: 'gauge',
    name: 'referral_reconciliation_last_run_timestamp_seconds',
    help: 'When the latest reconciliation with the treasury finished (absent before the first run)',
    labelNames: [],
    exposedBy: 'api',
  },
} as const satisfies Record<string, MetricDefinition>;

type Labels<D> = D extends MetricDefinition<infer L> ? L : never;
type Collect<L extends string> = (this: Gauge<L>) => void | Promise<void>;

export function counter<D extends MetricDefinition & { type: 'counter' }>(
  registry: Registry,
  metric: D,
): Counter<Labels<D>> {
  return new Counter({
    name: metric.name,
    help: metric.help,
    labelNames: [...metric.labelNames] as Labels<D>[],
    registers: [registry],
  });
}

/** A gauge; with `collect`, its value is read at scrape time. */
export function gauge<D extends MetricDefinition & { type: 'gauge' }>(
  registry: Registry,
  metric: D,
  collect?: Collect<Labels<D>>,
): Gauge<Labels<D>> {
  return new Gauge({
    name: metric.name,
    help: metric.help,
    labelNames: [...metric.labelNames] as Labels<D>[],
    registers: [registry],
    ...(collect ? { collect } : {}),
  });
}

export function histogram<D extends MetricDefinition & { type: 'histogram' }>(
  registry: Registry,
  metric: D,
): Histogram<Labels<D>> {
  return new Histogram({
    name: metric.name,
    help: metric.help,
    labelNames: [...metric.labelNames] as Labels<D>[],
    buckets: [...(metric.buckets ?? [])],
    registers: [registry],
  });
}

export const METRICS_TABLE_START =
  '<!-- metrics-table:start (generated by `pnpm docs:metrics` from packages/core/src/metrics.ts) -->';
export const METRICS_TABLE_END = '<!-- metrics-table:end -->';

/** README's metric table, generated from the vocabulary so the two cannot drift apart. */
export function metricsTable(): string {
  const rows = Object.values(METRICS).map((metric: MetricDefinition) => {
    const labels = metric.labelNames.length ? metric.labelNames.map((label) => `\`${label}\``).join(', ') : '';
    return `| \`${metric.name}\` | ${metric.type} | ${labels} | ${metric.exposedBy} | ${metric.help} |`;
  });
  return ['| metric | type | labels | exposed by | meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}

/** README with its metric table (between the markers) replaced by the vocabulary's. */
export function withMetricsTable(readme: string): string {
  return withGeneratedSection(readme, METRICS_TABLE_START, METRICS_TABLE_END, metricsTable());
}
