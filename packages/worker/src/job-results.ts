import type { JobResult, JobWithMetadata } from 'pg-boss';
import type { Logger } from 'pino';
import { DomainError, errorMessage, isSettled, type PayoutRejection, type PayoutResult } from '@referrals/core';
import type { WorkerMetrics } from './metrics.ts';

/**
 * What pg-boss is told about one payout job, with the job's metrics and log lines: a settled
 * purchase (or one that can never be paid) completes the job, a retryable attempt fails it so
 * pg-boss retries with backoff, and a purchase that ended `failed` goes straight to the dead
 * letters, whatever retries it had left.
 */
export function jobResultOf(
  job: JobWithMetadata<unknown>,
  result: PayoutResult | PayoutRejection,
  seconds: number,
  jobLog: Logger,
  metrics: WorkerMetrics,
): JobResult {
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
}
