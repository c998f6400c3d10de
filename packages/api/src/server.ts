/**
 * API entry point: configuration, the root logger, the database pool, the app; then listen, and
 * on a signal (or an uncaught error) stop taking requests, let in-flight ones finish, close the pool, and
 * exit; past the timeout, or on a second signal, exit at once.
 */
import closeWithGrace from 'close-with-grace';
import pino from 'pino';
import { ConfigError, createDatabase, gracefulShutdownOptions, loadConfig, logShutdownCause } from '@referrals/core';
import { buildApp } from './app.ts';

// Longer than a request takes (the treasury timeout bounds the slowest one), shorter than the
// grace period an orchestrator gives before SIGKILL.
const SHUTDOWN_TIMEOUT_MS = 10_000;

let config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`api: invalid configuration: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

const logger = pino({ level: config.logLevel, base: { service: 'api' } });
const db = createDatabase(config.databaseUrl, { applicationName: 'referral-payouts-api' });
const app = buildApp({ config, db, logger });

closeWithGrace(gracefulShutdownOptions(logger, SHUTDOWN_TIMEOUT_MS), async (cause) => {
  logShutdownCause(logger, cause);
  await app.close();
  await db.destroy();
  logger.info('stopped');
});

try {
  const address = await app.listen({ host: config.host, port: config.port });
  logger.info({ url: address, docs: `${address}/docs` }, `api listening on ${address}`);
} catch (error) {
  logger.fatal({ err: error }, 'api could not start');
  await db.destroy().catch(() => {});
  process.exit(1);
}
