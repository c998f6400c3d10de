import { type Actor, DomainError, type PayoutContext, type RetryReport, retryFailedPayouts } from '@referrals/core';

export interface BulkRetryProgress {
  running: boolean;
  actor: Actor | null;
  operator: string | null;
  total: number;
  done: number;
  /** Settled by the run (completed or nothing to pay). */
  completed: number;
  failed: number;
  startedAt: string | null;
}

const IDLE: BulkRetryProgress = {
  running: false,
  actor: null,
  operator: null,
  total: 0,
  done: 0,
  completed: 0,
  failed: 0,
  startedAt: null,
};

/** Purchases retried at once by a bulk run from the API or the console, as the CLI's default. */
export const BULK_RETRY_CONCURRENCY = 4;
export const BULK_RETRY_MAX_CONCURRENCY = 32;

/**
 * Bulk retries started through this API process: one at a time, so a double submit does not start
 * a second walk over the same purchases, with its progress readable while it runs (the console
 * polls it). Runs in several processes at once stay safe: every purchase goes through the one payout
 * function.
 */
export class BulkRetries {
  #progress: BulkRetryProgress = IDLE;
  readonly #stop = new AbortController();

  progress(): BulkRetryProgress {
    return { ...this.#progress };
  }

  async run(
    ctx: PayoutContext,
    who: { actor: Actor; operator: string | null },
    concurrency = BULK_RETRY_CONCURRENCY,
  ): Promise<RetryReport> {
    if (this.#progress.running) {
      throw new DomainError(
        'conflict',
        `a bulk retry started at ${this.#progress.startedAt} is still running (${this.#progress.done} of ${this.#progress.total} done)`,
      );
    }
    this.#progress = {
      ...IDLE,
      running: true,
      actor: who.actor,
      operator: who.operator,
      startedAt: new Date().toISOString(),
    };
    try {
      return await retryFailedPayouts(ctx, {
        actor: who.actor,
        operator: who.operator,
        concurrency,
        signal: this.#stop.signal,
        onStart: (total) => {
          this.#progress = { ...this.#progress, total };
        },
        onProgress: (_item, counts) => {
          this.#progress = {
            ...this.#progress,
            done: counts.completed + counts.failed,
            completed: counts.completed,
            failed: counts.failed,
          };
        },
      });
    } finally {
      this.#progress = { ...this.#progress, running: false };
    }
  }

  /** The server is closing: purchases under way finish, no new one starts. */
  stop(): void {
    this.#stop.abort();
  }
}
