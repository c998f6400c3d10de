import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PgBoss } from 'pg-boss';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { type Database, outboxBacklog } from '@referrals/core';
import { REFERRAL_PAYOUTS, REFERRAL_PAYOUTS_DEAD_LETTER } from './queues.ts';

export interface WorkerMetrics {
  readonly registry: Registry;
  /** Referral levels paid or failed, by level. */
  readonly levels: Counter<'level' | 'result'>;
  /** Payout jobs by how they ended: completed, not_applicable, retry, failed. */
  readonly purchases: Counter<'outcome'>;
  readonly payoutDuration: Histogram<'outcome'>;
  /** From the purchase's confirm to its payouts completing, read from the database timestamps. */
  readonly confirmToCompleted: Histogram;
  readonly outboxPublished: Counter;
}

/** One registry per worker, so several workers in one process (tests) do not collide. */
export function createWorkerMetrics(deps: { db: Database; boss: PgBoss }): WorkerMetrics {
  const registry = new Registry();
  const registers = [registry];
  new Gauge({
    name: 'referral_outbox_unpublished',
    help: 'Outbox rows not yet handed to the payout queue',
    registers,
    async collect() {
      this.set((await outboxBacklog(deps.db)).unpublished);
    },
  });
  new Gauge({
    name: 'referral_payout_queue_jobs',
    help: 'Jobs in the payout queues by state (from pg-boss cached queue counts)',
    labelNames: ['queue', 'state'] as const,
    registers,
    async collect() {
      for (const name of [REFERRAL_PAYOUTS, REFERRAL_PAYOUTS_DEAD_LETTER]) {
        const queue = await deps.boss.getQueue(name);
        this.set({ queue: name, state: 'queued' }, queue?.queuedCount ?? 0);
        this.set({ queue: name, state: 'active' }, queue?.activeCount ?? 0);
        this.set({ queue: name, state: 'failed' }, queue?.failedCount ?? 0);
      }
    },
  });
  return {
    registry,
    levels: new Counter({ name: 'referral_payout_levels_total', help: 'Referral levels paid or failed', labelNames: ['level', 'result'] as const, registers }),
    purchases: new Counter({ name: 'referral_payout_jobs_total', help: 'Payout jobs by outcome', labelNames: ['outcome'] as const, registers }),
    payoutDuration: new Histogram({
      name: 'referral_payout_duration_seconds',
      help: 'Time spent processing one purchase\'s referral payouts',
      labelNames: ['outcome'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    confirmToCompleted: new Histogram({
      name: 'referral_payout_confirm_to_completed_seconds',
      help: 'Lag from purchase confirmation to its referral payouts completing',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
      registers,
    }),
    outboxPublished: new Counter({ name: 'referral_outbox_published_total', help: 'Outbox rows handed to the payout queue', registers }),
  };
}

/** GET /metrics on its own port, plain node:http: the worker has no other HTTP surface. */
export async function serveMetrics(metrics: WorkerMetrics, host: string, port: number): Promise<{ url: string; close(): Promise<void> }> {
  collectDefaultMetrics({ register: metrics.registry });
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (error: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics unavailable: ${String(error)}\n`),
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
