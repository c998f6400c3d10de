import type { Logger } from 'pino';

/**
 * Options for close-with-grace that report through the process's root logger instead of the
 * console. Entry points pass them with their own close function: stop intake, drain, close pools.
 * `delayMs` is the force: past it the process exits 1 with work still open.
 */
export function gracefulShutdownOptions(logger: Logger, delayMs: number) {
  return {
    delay: delayMs,
    logger: { error: (error: unknown) => logger.error({ err: error }, 'shutdown failed') },
    onTimeout: (timeoutMs: number) => logger.error({ timeoutMs }, 'shutdown timed out: exiting with work still open'),
    onSecondSignal: (signal: string) => logger.warn({ signal }, 'second signal: exiting without waiting'),
    onSecondError: (error: unknown) =>
      logger.error({ err: error }, 'error while shutting down: exiting without waiting'),
  };
}

/** The first log line of a shutdown: the signal that asked for it, or the error that forced it. */
export function logShutdownCause(logger: Logger, cause: { signal?: string; err?: Error }): void {
  if (cause.err) logger.fatal({ err: cause.err }, 'uncaught error: shutting down');
  else logger.info({ signal: cause.signal ?? 'manual' }, 'shutting down');
}
