import type { JobResult, JobWithMetadata, PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import {
  DomainError,
  errorMessage,
  isGateShut,
  isSettled,
  LEASE_MARGIN_MS,
  markReferralPayoutFailed,
  type PayoutContext,
  type PayoutRejection,
  type PayoutRequest,
  type PayoutResult,
  processReferralPayoutsBatch,
} from '@referrals/core';
import type { WorkerMetrics } from './metrics.ts';
import { parsePurchaseJob, REFERRAL_PAYOUTS, REFERRAL_PAYOUTS_DEAD_LETTER } from './queues.ts';

export interface PayoutQueueSettings {
  /** PAYOUT_RETRY_LIMIT: retries after the first attempt. */
  retryLimit: number;
  /** PAYOUT_RETRY_DELAY_SECONDS: first retry delay, doubled (with jitter) each retry. */
  retryDelaySeconds: number;
  /** TREASURY_TIMEOUT_MS: bounds one transfer, and so how long a job may legitimately run. */
  treasuryTimeoutMs: number;
  /** A job whose worker stops heartbeating for this long is failed and retried (pg-boss minimum 10). */
  heartbeatSeconds: number;
}

export interface PayoutHandlerDeps {
  boss: PgBoss;
  payouts: PayoutContext;
  logger: Logger;
  metrics: WorkerMetrics;
  /** WORKER_CONCURRENCY: payouts in flight at once in this process. */
  concurrency: number;
  /** Idle poll of each slot; NOTIFY wakes them sooner. pg-boss minimum 0.5. */
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

// A re-delivered job may wait out a dead worker's lease on the purchase before transferring itself.
const LEASE_MARGIN_SECONDS = Math.ceil(LEASE_MARGIN_MS / 1000);

/**
 * The payout queue's settings, applied on every start so a changed PAYOUT_RETRY_* takes effect
 * for jobs sent afterwards. Expiry is a backstop only: a live worker heartbeats, a dead one is
 * detected by its missing heartbeat within `heartbeatSeconds`.
 */
export async function ensurePayoutQueues(boss: PgBoss, settings: PayoutQueueSettings): Promise<void> {
  const transferSeconds = Math.ceil(settings.treasuryTimeoutMs / 1000);
  const options = {
    retryLimit: settings.retryLimit,
    retryDelay: settings.retryDelaySeconds,
    // PAYOUT_RETRY_DELAY_SECONDS=0 means retry at once; any other value doubles (with jitter) per retry.
    retryBackoff: settings.retryDelaySeconds > 0,
    expireInSeconds: 4 * transferSeconds + LEASE_MARGIN_SECONDS + 30,
    heartbeatSeconds: settings.heartbeatSeconds,
    notify: true,
  };
  // The dead-letter queue must exist before a queue can name it.
  if (!(await boss.getQueue(REFERRAL_PAYOUTS_DEAD_LETTER))) {
    await boss.createQueue(REFERRAL_PAYOUTS_DEAD_LETTER, { ...options, retryLimit: 10 });
  }
  if (!(await boss.getQueue(REFERRAL_PAYOUTS))) {
    await boss.createQueue(REFERRAL_PAYOUTS, { ...options, deadLetter: REFERRAL_PAYOUTS_DEAD_LETTER });
  }
  await boss.updateQueue(REFERRAL_PAYOUTS, { ...options, deadLetter: REFERRAL_PAYOUTS_DEAD_LETTER });
}

/**
 * Registers the payout handler: pg-boss workers ("slots") holding WORKER_CONCURRENCY jobs in all. A slot that finishes a batch fetches again at once, and a slot
 * that starts one wakes an idle sibling, so a backlog keeps every slot busy instead of each waiting
 * out its poll interval.
 */
export async function registerPayoutHandler(deps: PayoutHandlerDeps): Promise<void> {
  const { boss, metrics } = deps;
  const slots: { id: string | undefined; busy: boolean }[] = [];

  /** One job's result for pg-boss, with its metrics and log line. */
  const settle = (
    job: JobWithMetadata<unknown>,
    result: PayoutResult | PayoutRejection,
    seconds: number,
    jobLog: Logger,
  ): JobResult => {
    const log = jobLog.child({ purchaseId: result.purchaseId });
    if (result.status === 'rejected') {
      metrics.payoutDuration.observe({ outcome: 'error' }, seconds);
      const { error } = result;
      if (error instanceof DomainError && error.code === 'gateway_mismatch') {
        // Planned for the other gateway (the deployment was switched while this worker ran): nothing
        // moved. The job fails, so its retries and then the dead letter leave the purchase `failed`
        // with this message for an operator, instead of dropping it while it stays queued.
        log.error({ code: error.code, err: error }, 'referral payout refused: levels planned for another gateway');
        return { id: job.id, status: 'failed', output: { message: error.message } };
      }
      if (error instanceof DomainError) {
        // not_found / purchase_not_confirmed: the purchase will not change under a retry.
        log.error({ code: error.code, err: error }, 'payout job refers to a purchase that cannot be paid; dropped');
        return { id: job.id, status: 'completed', output: { dropped: error.code } };
      }
      log.error({ err: error }, 'referral payout attempt failed unexpectedly');
      return { id: job.id, status: 'failed', output: { message: errorMessage(error) } };
    }
    const { failure } = result;
    if (failure !== null) {
      for (const level of failure.levels) metrics.levels.inc({ level, result: 'failed' });
    }
    if (failure === null || isSettled(result.status)) {
      metrics.payoutDuration.observe({ outcome: result.status }, seconds);
      if (result.changed) {
        metrics.purchases.inc({ outcome: result.status });
        for (const level of result.paid) metrics.levels.inc({ level: level.level, result: 'paid' });
        if (result.status === 'completed' && result.confirmedAt && result.completedAt) {
          metrics.confirmToCompleted.observe((result.completedAt.getTime() - result.confirmedAt.getTime()) / 1000);
        }
      }
      return {
        id: job.id,
        status: 'completed',
        output: { status: result.status, paid: result.paid.map((p) => p.level) },
      };
    }
    metrics.payoutDuration.observe({ outcome: 'error' }, seconds);
    metrics.purchases.inc({ outcome: result.status === 'failed' ? 'failed' : 'retry' });
    if (result.status === 'failed') {
      // The last attempt: nothing retries this purchase until an operator repairs it.
      for (const payoutLevel of failure.levels.length > 0 ? failure.levels : [null]) {
        log.error(
          { payoutLevel, attempts: result.attempts, err: failure.cause },
          'referral payout failed; retries spent',
        );
      }
    }
    // processReferralPayouts has logged each attempt, with its attempt number and resulting status.
    // A purchase that is `failed` (retries spent, or refused by the treasury) is not retried.
    return {
      id: job.id,
      status: result.status === 'failed' ? 'deadletter' : 'failed',
      output: { message: failure.message },
    };
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
        results.push(result === HANDED_BACK ? await handBack(job, logger) : settle(job, result, seconds, logger));
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
  // In-database: WORKER_CONCURRENCY jobs in hand in all, in batches. Network: WORKER_CONCURRENCY
  // slots, each holding a batch sized to keep the transfer slots busy.
  const inDatabase = deps.payouts.gateway.kind === 'in-database';
  const batchSize = inDatabase
    ? Math.min(deps.concurrency, IN_DATABASE_BATCH)
    : externalBatch(deps.concurrency, deps.payouts.transferSlots?.capacity);
  const jobsInHand = inDatabase ? deps.concurrency : deps.concurrency * batchSize;
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
        const idle = slots.find((s) => !s.busy && s.id !== undefined);
        if (idle?.id) boss.notifyWorker(idle.id);
        try {
          return await handleBatch(jobs);
        } finally {
          slot.busy = false;
          if (slot.id) boss.notifyWorker(slot.id);
        }
      },
    );
  }

  await boss.work(
    REFERRAL_PAYOUTS_DEAD_LETTER,
    { batchSize: 1, includeMetadata: true, pollingIntervalSeconds: 2 },
    async ([job]: JobWithMetadata<unknown>[]) => {
      if (!job) return undefined;
      const log = deps.logger.child({ jobId: job.id, sourceJobId: job.sourceId });
      const parsed = parsePurchaseJob(job.data);
      if (!parsed) {
        log.error({ data: job.data }, 'dead-lettered payout job without a valid purchaseId; dropped');
        return undefined;
      }
      const lastError = job.sourceOutput ? errorMessage(outputMessage(job.sourceOutput)) : 'payout retries exhausted';
      try {
        const marked = await markReferralPayoutFailed(deps.payouts.db, parsed.purchaseId, 'worker', lastError);
        // Only a purchase still queued is exhausted here; one settled or failed meanwhile has its own record.
        if (marked.changed) {
          log.error(
            { purchaseId: parsed.purchaseId, status: marked.status, lastError: marked.lastError },
            'referral payout retries exhausted',
          );
        } else {
          log.debug(
            { purchaseId: parsed.purchaseId, status: marked.status },
            'dead-lettered payout job for a purchase no longer queued',
          );
        }
        return { status: marked.status };
      } catch (error) {
        if (error instanceof DomainError) {
          log.error(
            { purchaseId: parsed.purchaseId, code: error.code },
            'dead-lettered payout job refers to a purchase that cannot be paid; dropped',
          );
          return undefined;
        }
        throw error;
      }
    },
  );
}

/** pg-boss stores a failed job's error as its output: `{ message, stack, ... }` or the raw value. */
function outputMessage(output: object): string {
  const message = (output as Record<string, unknown>).message;
  return typeof message === 'string' ? message : JSON.stringify(output);
}
