import pino from 'pino';
import { ConfigError, loadConfig } from '@referrals/core';
import { startWorker } from './worker.ts';

// Inside the 30 s stop grace docker/compose.yaml gives the worker, so pools close before a SIGKILL.
const SHUTDOWN_TIMEOUT_MS = 20_000;

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

const logger = pino({ level: config.logLevel, base: { service: 'referral-payouts-worker', pid: process.pid } });

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
  logger.fatal({ err: error }, 'worker failed to start');
  process.exit(1);
});
process.off('SIGTERM', abortStart);
process.off('SIGINT', abortStart);

let signalled = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (signalled) {
      logger.warn({ signal }, 'second signal: exiting without waiting for payouts in hand');
      process.exit(1);
    }
    signalled = true;
    logger.info({ signal }, 'shutting down');
    worker.stop(SHUTDOWN_TIMEOUT_MS).then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'worker did not stop cleanly');
        process.exit(1);
      },
    );
  });
}
