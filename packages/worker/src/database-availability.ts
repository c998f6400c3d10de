import type { Logger } from 'pino';
import { isDatabaseUnavailable } from '@referrals/core';

/**
 * Whether this worker can currently reach Postgres, as seen by whichever part touched it last. An
 * outage makes every slot, the relay and pg-boss's own timers fail several times a second; the log
 * gets one line when the database goes away and one when it is back, with how long it was gone.
 */
export interface DatabaseAvailability {
  /**
   * Records a failure of `what`. Returns false (and records nothing) when the error is not about
   * reaching the database, so the caller logs it as the error it is.
   */
  failed(error: unknown, what: string): boolean;
  /**
   * Records that work begun at `startedAt` (a Date.now() value) went through. Work begun before the
   * outage was noticed proves nothing about now: it may have finished just before the server went.
   */
  reachable(startedAt: number): void;
  readonly down: boolean;
}

export function databaseAvailability(logger: Logger): DatabaseAvailability {
  let downSince: number | undefined;
  return {
    failed(error, what) {
      if (!isDatabaseUnavailable(error)) return false;
      if (downSince === undefined) {
        downSince = Date.now();
        logger.warn(
          { during: what, reason: error instanceof Error ? error.message : String(error) },
          'database unavailable: retrying until it is back',
        );
      }
      return true;
    },
    reachable(startedAt) {
      if (downSince === undefined || startedAt < downSince) return;
      logger.info({ downForMs: Date.now() - downSince }, 'database available again');
      downSince = undefined;
    },
    get down() {
      return downSince !== undefined;
    },
  };
}
