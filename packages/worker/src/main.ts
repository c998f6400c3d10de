/**
 * Worker entry point: configuration, the root logger, the worker; on a signal (or an uncaught error)
 * stop the relay, finish the payouts in hand, close the pools and exit; past the timeout, or on a
 * second signal, exit at once.
 */
import closeWithGrace from 'close-with-grace';
import { ConfigError, createLogger, gracefulShutdownOptions, loadConfig, logShutdownCause } from '@referrals/core';
import { startWorker } from './worker.ts';

// Payouts in hand get DRAIN_TIMEOUT_MS to finish (pg-boss re-queues the rest), then the pools close;
// the whole shutdown stays inside the 30 s stop grace docker/compose.yaml gives the worker.
const DRAIN_TIMEOUT_MS = 20_000;
const SHUTDOWN_TIMEOUT_MS = 25_000;

let config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`worker: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}

const logger = createLogger({ level: config.logLevel, service: 'worker' });

// A stop signal while the start still waits for the database ends the wait and the process.
const starting = new AbortController();
const abortStart = () => starting.abort();
process.once('SIGTERM', abortStart);
process.once('SIGINT', abortStart);
const worker = await startWorker({ config, logger, signal: starting.signal }).catch((error: unknown) => {
  if (starting.signal.aborted) {
    logger.info('stopped before the database became available');
    process.exit(0);
  }
  if (error instanceof ConfigError) {
    // PAYOUT_GATEWAY differs from the database's: one line, and the exit code of bad configuration.
    process.stderr.write(`worker: ${error.message}\n`);
    process.exit(2);
  }
  logger.fatal({ err: error }, 'worker failed to start');
  process.exit(1);
});
process.off('SIGTERM', abortStart);
process.off('SIGINT', abortStart);
// The launcher's banner shows where the metrics are (WORKER_METRICS_PORT=0 picks a free port).
process.send?.({ type: 'worker-ready', metricsUrl: worker.metricsUrl });

closeWithGrace(gracefulShutdownOptions(logger, SHUTDOWN_TIMEOUT_MS), async (cause) => {
  logShutdownCause(logger, cause);
  await worker.stop(DRAIN_TIMEOUT_MS);
});
