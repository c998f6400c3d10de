import {
  type OutboxTopic,
  type OutboxTopics,
  REFERRAL_PAYOUT_DEAD_LETTER_QUEUE,
  REFERRAL_PAYOUT_QUEUE,
  REFERRAL_PAYOUT_TOPIC,
} from '@referrals/core';

export const REFERRAL_PAYOUTS = REFERRAL_PAYOUT_QUEUE;
// Named in core, whose stuck-purchase query reads the live jobs of both queues.
export const REFERRAL_PAYOUTS_DEAD_LETTER = REFERRAL_PAYOUT_DEAD_LETTER_QUEUE;

/** Every queue the worker uses, and the payload its jobs carry. Handlers are keyed by it. */
export interface Queues {
  [REFERRAL_PAYOUTS]: { purchaseId: string };
  /** pg-boss copies a job whose retries are spent here, payload unchanged. */
  [REFERRAL_PAYOUTS_DEAD_LETTER]: { purchaseId: string };
}
export type QueueName = keyof Queues;

/**
 * Where the relay sends each outbox topic. The job id is the outbox row's aggregate id (the
 * purchase id), so replaying a row cannot enqueue a second job for the same purchase.
 */
export const OUTBOX_ROUTES: {
  [T in OutboxTopic]: {
    queue: QueueName;
    job(aggregateId: string, payload: OutboxTopics[T]): { id: string; data: Queues[QueueName] };
  };
} = {
  [REFERRAL_PAYOUT_TOPIC]: {
    queue: REFERRAL_PAYOUTS,
    job: (aggregateId, payload) => ({ id: aggregateId, data: { purchaseId: payload.purchaseId } }),
  },
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Checks a payout job's payload before use; null when it is not one this worker wrote. */
export function parsePurchaseJob(data: unknown): Queues[typeof REFERRAL_PAYOUTS] | null {
  if (typeof data !== 'object' || data === null) return null;
  const purchaseId = (data as Record<string, unknown>).purchaseId;
  return typeof purchaseId === 'string' && UUID.test(purchaseId) ? { purchaseId } : null;
}
