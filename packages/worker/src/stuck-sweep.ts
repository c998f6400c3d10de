import { fromKysely, type PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { claimStuckQueued, type Database } from '@referrals/core';
import type { DatabaseAvailability } from './database-availability.ts';
import { REFERRAL_PAYOUTS } from './queues.ts';

export interface StuckSweepDeps {
  db: Database;
  boss: PgBoss;
  logger: Logger;
  /** STUCK_QUEUED_AFTER_SECONDS: no live job and no activity for this long makes a queued purchase stuck. */
  thresholdSeconds: number;
  /** STUCK_QUEUED_SWEEP_INTERVAL_SECONDS. */
  intervalSeconds: number;
  availability?: DatabaseAvailability;
  onRequeued?(count: number): void;
  batchSize?: number;
}

export interface StuckSweep {
  /** Re-enqueues every stuck purchase now; resolves with how many (0 when another worker is sweeping). */
  sweep(): Promise<number>;
  /** Stops the timer, after the sweep in hand commits. */
  stop(): Promise<void>;
}

const DEFAULT_BATCH = 500;

/**
 * Nothing stays queued forever: every interval, each worker looks for queued purchases whose job is
 * gone (see claimStuckQueued in core) and gives each one a fresh job, in the transaction that
 * claims it. The job gets a new id, as a job handed back by the treasury gate does: the purchase id
 * is the id of the job the relay created, and that row may still exist, completed or failed, so
 * sending under it again would be refused as a duplicate. Re-running the payout is always safe: a
 * purchase settled meanwhile is left as it is.
 */
export function startStuckSweep(deps: StuckSweepDeps): StuckSweep {
  const log = deps.logger.child({ component: 'stuck-sweep' });
  const batchSize = deps.batchSize ?? DEFAULT_BATCH;
  let running: Promise<number> | undefined;

  async function sweepOnce(): Promise<number> {
    let total = 0;
    const ids: string[] = [];
    for (;;) {
      const claimed = await deps.db.transaction().execute(async (trx) => {
        const stuck = await claimStuckQueued(trx, { thresholdSeconds: deps.thresholdSeconds, limit: batchSize });
        if (stuck === null || stuck.length === 0) return stuck;
        await deps.boss.insert(
          REFERRAL_PAYOUTS,
          stuck.map((purchaseId) => ({ data: { purchaseId } })),
          { db: fromKysely(trx) },
        );
        return stuck;
      });
      if (claimed === null || claimed.length === 0) break;
      total += claimed.length;
      ids.push(...claimed);
      deps.onRequeued?.(claimed.length);
      if (claimed.length < batchSize) break;
    }
    if (total > 0) {
      log.warn(
        { requeued: total, purchaseIds: ids.slice(0, 20), thresholdSeconds: deps.thresholdSeconds },
        're-enqueued queued purchases that had no live payout job',
      );
    }
    return total;
  }

  const sweep = (): Promise<number> => {
    running ??= sweepOnce().finally(() => {
      running = undefined;
    });
    return running;
  };

  const tick = () => {
    const startedAt = Date.now();
    sweep().then(
      () => deps.availability?.reachable(startedAt),
      (error: unknown) => {
        if (!deps.availability?.failed(error, 'stuck sweep')) {
          log.error({ err: error }, 'sweeping stuck queued purchases failed; trying again at the next interval');
        }
      },
    );
  };
  const timer = setInterval(tick, deps.intervalSeconds * 1000).unref();
  tick();

  return {
    sweep,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
