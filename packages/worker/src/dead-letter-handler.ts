import type { JobWithMetadata, PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { DomainError, errorMessage, markReferralPayoutFailed, type PayoutContext } from '@referrals/core';
import { parsePurchaseJob, REFERRAL_PAYOUTS_DEAD_LETTER } from './queues.ts';

/**
 * Handles the payout jobs pg-boss dead-letters once their retries are spent: the purchase, if it is
 * still queued, becomes `failed` with the last attempt's error, for an operator to repair.
 */
export async function registerDeadLetterHandler(deps: {
  boss: PgBoss;
  payouts: PayoutContext;
  logger: Logger;
}): Promise<void> {
  await deps.boss.work(
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
