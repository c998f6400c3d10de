/**
 * API entry point: configuration, the root logger, the database pool, the app; then listen, and
 * on a signal (or an uncaught error) stop taking requests, let in-flight ones finish, close the pool, and
 * exit; past the timeout, or on a second signal, exit at once.
 */
import closeWithGrace from 'close-with-grace';
import {
  ConfigError,
  createDatabase,
  createLogger,
  gracefulShutdownOptions,
  loadConfig,
  logShutdownCause,
} from '@referrals/core';
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

const logger = createLogger({ level: config.logLevel, service: 'api' });
const db = createDatabase(config.databaseUrl, { applicationName: 'referral-payouts-api' });
const app = buildApp({ config, db, logger });

closeWithGrace(gracefulShutdownOptions(logger, SHUTDOWN_TIMEOUT_MS), async (cause) => {
  logShutdownCause(logger, cause);
  await app.close();
  await db.destroy();
  logger.info('stopped');
});

try {
  // Fastify logs the address itself, once; this makes that one line ours, with the URL as a field
  // (pino takes `msg` from an object logged alone) for whatever reads the logs.
  const listening = (url: string) => ({ url, docs: `${url}/docs`, msg: `api listening on ${url}` });
  await app.listen({
    host: config.host,
    port: config.port,
    listenTextResolver: listening as unknown as (url: string) => string,
  });
} catch (error) {
  logger.fatal({ err: error }, 'api could not start');
  await db.destroy().catch(() => {});
  process.exit(1);
}
