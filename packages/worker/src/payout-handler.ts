import type { JobResult, JobWithMetadata, PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import {
  isGateShut,
  type PayoutContext,
  type PayoutRejection,
  type PayoutRequest,
  type PayoutResult,
  processReferralPayoutsBatch,
} from '@referrals/core';
import { registerDeadLetterHandler } from './dead-letter-handler.ts';
import { jobResultOf } from './job-results.ts';
import type { WorkerMetrics } from './metrics.ts';
import { parsePurchaseJob, REFERRAL_PAYOUTS } from './queues.ts';

export { ensurePayoutQueues, type PayoutQueueSettings } from './payout-queues.ts';

export interface PayoutHandlerDeps {
  boss: PgBoss;
  payouts: PayoutContext;
  logger: Logger;
  metrics: WorkerMetrics;
  /** WORKER_CONCURRENCY: payouts in flight at once in this process. */
  concurrency: number;
  /** Idle poll of each slot (pg-boss minimum 0.5); the relay wakes one sooner when it publishes. */
  pollingIntervalSeconds: number;
  /** Aborted when the worker stops: payouts held by the treasury gate go back to the queue at once. */
  stopping: AbortSignal;
}

/**
 * How long a job waits in hand for the treasury gate before it goes back to the queue (well inside
 * the queue's expiry, whose margin of 30 s it fits in with a transfer still to make).
 */
const HOLD_MS = 20_000;

// Jobs one slot fetches and settles together when the gateway settles a batch in one transaction.
const IN_DATABASE_BATCH = 8;

// Slots of a network gateway: enough to keep fetching while others wait on the treasury.
const MAX_NETWORK_SLOTS = 16;

/** A job held back by the treasury gate past HOLD_MS, handed back to the queue. */
const HANDED_BACK = Symbol('handed back');

/**
 * Jobs per fetch for a network gateway: enough that the slots together keep TREASURY_MAX_IN_FLIGHT
 * transfers (two per purchase) in flight, so a slow treasury costs latency, not throughput. Each
 * job's transfers wait for a transfer slot, never for a database connection.
 */
function externalBatch(concurrency: number, maxInFlight = 2 * concurrency): number {
  return Math.max(1, Math.ceil(maxInFlight / 2 / concurrency));
}

/** The payout slots of one process. */
export interface PayoutSlots {
  /** Wakes one idle slot to fetch now: the relay calls it once it has published jobs. */
  wake(): void;
}

/**
 * Registers the payout handler: pg-boss workers ("slots") holding WORKER_CONCURRENCY jobs in all,
 * and the dead-letter handler. A slot that finishes a batch fetches again at once, and a slot that
 * starts one wakes an idle sibling, so a backlog keeps every slot busy instead of each waiting out
 * its poll interval.
 */
export async function registerPayoutHandler(deps: PayoutHandlerDeps): Promise<PayoutSlots> {
  const { boss, metrics } = deps;
  const slots: { id: string | undefined; busy: boolean }[] = [];
  const wakeIdleSlot = () => {
    const idle = slots.find((s) => !s.busy && s.id !== undefined);
    if (idle?.id) boss.notifyWorker(idle.id);
  };

  const handleBatch = async (jobs: JobWithMetadata<unknown>[]): Promise<JobResult[]> => {
    const started = performance.now();
    const results: JobResult[] = [];
    const requests: (PayoutRequest & { job: JobWithMetadata<unknown>; finalAttempt: boolean; logger: Logger })[] = [];
    for (const job of jobs) {
      const parsed = parsePurchaseJob(job.data);
      if (!parsed) {
        // No retry can fix a payload this worker never wrote; completing it keeps it out of the way.
        deps.logger.error({ jobId: job.id, data: job.data }, 'payout job without a valid purchaseId; dropped');
        results.push({ id: job.id, status: 'completed', output: { dropped: 'invalid_payload' } });
        continue;
      }
      // The last attempt pg-boss will make: a failure now leaves the purchase `failed` at once.
      requests.push({
        job,
        purchaseId: parsed.purchaseId,
        finalAttempt: job.retryCount >= job.retryLimit,
        logger: deps.logger.child({ jobId: job.id, attempt: job.retryCount + 1 }),
      });
    }
    const settled = await throughGate(requests);
    const seconds = (performance.now() - started) / 1000;
    await Promise.all(
      settled.map(async (result, i) => {
        const { job, logger } = requests[i]!;
        results.push(
          result === HANDED_BACK ? await handBack(job, logger) : jobResultOf(job, result, seconds, logger, metrics),
        );
      }),
    );
    return results;
  };

  /**
   * Runs the requests through the payout function. One the treasury gate holds back (breaker open,
   * payouts paused) recorded nothing and spent no attempt; it stays in hand and runs again when the
   * gate lets it (closed, or a probe due), for up to HOLD_MS. Meanwhile its slot fetches nothing,
   * so a held backlog stays queued in pg-boss untouched instead of cycling through retries.
   */
  const throughGate = async (
    requests: PayoutRequest[],
  ): Promise<(PayoutResult | PayoutRejection | typeof HANDED_BACK)[]> => {
    const results: (PayoutResult | PayoutRejection | typeof HANDED_BACK)[] = new Array(requests.length);
    const gate = deps.payouts.gate;
    const heldSince = performance.now();
    let waiting = requests.map((_, i) => i);
    for (;;) {
      const settled = await processReferralPayoutsBatch(
        deps.payouts,
        waiting.map((i) => requests[i]!),
        { actor: 'worker' },
      );
      const held: number[] = [];
      settled.forEach((result, k) => {
        if (result.status === 'rejected' && isGateShut(result.error)) held.push(waiting[k]!);
        else results[waiting[k]!] = result;
      });
      const left = HOLD_MS - (performance.now() - heldSince);
      if (held.length === 0) return results;
      if (!gate || left <= 0 || deps.stopping.aborted) {
        for (const i of held) results[i] = HANDED_BACK;
        return results;
      }
      await gate.untilMayPass(deps.payouts.gateway.kind, { signal: deps.stopping, timeoutMs: left });
      waiting = held;
    }
  };

  /**
   * A job held too long goes back as a fresh job with the retries it had left, so neither the hold
   * nor the gate costs the purchase an attempt.
   */
  const handBack = async (job: JobWithMetadata<unknown>, log: Logger): Promise<JobResult> => {
    const retriesLeft = Math.max(0, job.retryLimit - job.retryCount);
    const id = await boss.send(REFERRAL_PAYOUTS, job.data as object, { retryLimit: retriesLeft });
    log.debug({ newJobId: id, retriesLeft }, 'payout held by the treasury gate; handed back to the queue');
    return { id: job.id, status: 'completed', output: { handedBack: id } };
  };

  // With an in-database gateway a slot takes a batch, settles it in one transaction and completes
  // the jobs with one statement per outcome: round trips are shared by the batch instead of paid
  // per purchase (measured: ~450 → ~550 payouts/s for one worker going from batches of 4 to 8).
  // With a network gateway each purchase settles on its own within the batch, its transfers bounded
  // by the process's transfer slots; a batch's jobs are completed when its slowest one ends (at most
  // TREASURY_TIMEOUT_MS later). Either way a purchase that fails is retried alone.
  // In-database: WORKER_CONCURRENCY jobs in hand in all, in batches of 8 (the default 32 makes four
  // slots: one worker drained about twice as fast as with two, and faster than with eight). Network:
  // WORKER_CONCURRENCY slots (at most 16: each polls while idle), each holding a batch sized to keep
  // the transfer slots busy.
  const inDatabase = deps.payouts.gateway.kind === 'in-database';
  const networkSlots = Math.min(deps.concurrency, MAX_NETWORK_SLOTS);
  const batchSize = inDatabase
    ? Math.min(deps.concurrency, IN_DATABASE_BATCH)
    : externalBatch(networkSlots, deps.payouts.transferSlots?.capacity);
  const jobsInHand = inDatabase ? deps.concurrency : networkSlots * batchSize;
  for (let remaining = jobsInHand; remaining > 0; remaining -= batchSize) {
    const slot: { id: string | undefined; busy: boolean } = { id: undefined, busy: false };
    slots.push(slot);
    slot.id = await boss.work(
      REFERRAL_PAYOUTS,
      {
        batchSize: Math.min(batchSize, remaining),
        includeMetadata: true,
        perJobResults: true,
        pollingIntervalSeconds: deps.pollingIntervalSeconds,
        notifyPollingIntervalSeconds: deps.pollingIntervalSeconds,
      },
      async (jobs: JobWithMetadata<unknown>[]): Promise<JobResult[]> => {
        if (jobs.length === 0) return [];
        slot.busy = true;
        wakeIdleSlot();
        try {
          return await handleBatch(jobs);
        } finally {
          slot.busy = false;
          if (slot.id) boss.notifyWorker(slot.id);
        }
      },
    );
  }

  await registerDeadLetterHandler(deps);
  return { wake: wakeIdleSlot };
}
