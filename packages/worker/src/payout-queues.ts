import type { PgBoss } from 'pg-boss';
import { LEASE_MARGIN_MS } from '@referrals/core';
import { REFERRAL_PAYOUTS, REFERRAL_PAYOUTS_DEAD_LETTER } from './queues.ts';

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
  };
  // The dead-letter queue must exist before a queue can name it.
  if (!(await boss.getQueue(REFERRAL_PAYOUTS_DEAD_LETTER))) {
    await boss.createQueue(REFERRAL_PAYOUTS_DEAD_LETTER, { ...options, retryLimit: 10, notify: true });
  }
  // No NOTIFY on the payout queue: pg-boss would wake every slot of every worker for each insert
  // (one fetch per slot, all but one empty) and serialise the relay's commits, which notify inside
  // their transaction. The relay wakes one idle slot of its own process instead (PayoutSlots.wake);
  // jobs other processes publish, retries and handed-back jobs are found by the slots' poll.
  const payouts = { ...options, deadLetter: REFERRAL_PAYOUTS_DEAD_LETTER, notify: false };
  if (!(await boss.getQueue(REFERRAL_PAYOUTS))) await boss.createQueue(REFERRAL_PAYOUTS, payouts);
  await boss.updateQueue(REFERRAL_PAYOUTS, payouts);
}
