import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PgBoss } from 'pg-boss';
import { collectDefaultMetrics, type Counter, type Histogram, Registry } from 'prom-client';
import {
  counter,
  type Database,
  gauge,
  histogram,
  METRICS,
  outboxBacklog,
  type PayoutContext,
  TREASURY_GATE_STATES,
} from '@referrals/core';
import { REFERRAL_PAYOUTS, REFERRAL_PAYOUTS_DEAD_LETTER } from './queues.ts';

/** The worker's metrics, named by core's metric vocabulary. */
export interface WorkerMetrics {
  readonly registry: Registry;
  /** Referral levels paid or failed, by level. */
  readonly levels: Counter<'level' | 'result'>;
  /** Payout runs that changed a purchase, by outcome: completed, not_applicable, retry, failed. */
  readonly purchases: Counter<'outcome'>;
  readonly payoutDuration: Histogram<'outcome'>;
  /** From the purchase's confirm to its payouts completing, read from the database timestamps. */
  readonly confirmToCompleted: Histogram;
  readonly outboxPublished: Counter;
  /** Queued purchases the stuck sweep gave a fresh job. */
  readonly requeued: Counter;
  /** Treasury gate transitions this process made (each is made, and so counted, by one process only). */
  readonly gateTransitions: Counter<'from' | 'to'>;
}

/** One registry per worker, so several workers in one process (tests) do not collide. */
export function createWorkerMetrics(deps: {
  db: Database;
  boss: PgBoss;
  payouts?: Pick<PayoutContext, 'gate' | 'transferSlots'>;
}): WorkerMetrics {
  const registry = new Registry();
  gauge(registry, METRICS.outboxUnpublished, async function () {
    this.set((await outboxBacklog(deps.db)).unpublished);
  });
  gauge(registry, METRICS.queueJobs, async function () {
    // pg-boss's cached queue counts: cheap, and refreshed by its monitor every few seconds.
    for (const name of [REFERRAL_PAYOUTS, REFERRAL_PAYOUTS_DEAD_LETTER]) {
      const queue = await deps.boss.getQueue(name);
      this.set({ queue: name, state: 'queued' }, queue?.queuedCount ?? 0);
      this.set({ queue: name, state: 'active' }, queue?.activeCount ?? 0);
      this.set({ queue: name, state: 'failed' }, queue?.failedCount ?? 0);
    }
  });
  const { gate, transferSlots } = deps.payouts ?? {};
  if (gate) {
    gauge(registry, METRICS.treasuryGate, async function () {
      const { state } = await gate.view();
      for (const s of TREASURY_GATE_STATES) this.set({ state: s }, s === state ? 1 : 0);
    });
  }
  if (transferSlots) {
    gauge(registry, METRICS.treasuryTransfersInFlight, function () {
      this.set(transferSlots.inFlight);
    });
    gauge(registry, METRICS.treasuryTransfersWaiting, function () {
      this.set(transferSlots.waiting);
    });
  }
  return {
    registry,
    levels: counter(registry, METRICS.payoutLevels),
    purchases: counter(registry, METRICS.payoutRuns),
    payoutDuration: histogram(registry, METRICS.payoutDuration),
    confirmToCompleted: histogram(registry, METRICS.confirmToCompleted),
    outboxPublished: counter(registry, METRICS.outboxPublished),
    requeued: counter(registry, METRICS.payoutRequeued),
    gateTransitions: counter(registry, METRICS.treasuryGateTransitions),
  };
}

/** GET /metrics on its own port, plain node:http: the worker has no other HTTP surface. */
export async function serveMetrics(
  metrics: WorkerMetrics,
  host: string,
  port: number,
): Promise<{ url: string; close(): Promise<void> }> {
  collectDefaultMetrics({ register: metrics.registry });
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (error: unknown) =>
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics unavailable: ${String(error)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host}:${address.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
