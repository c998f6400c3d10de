/**
 * API entry point: configuration, the root logger, the database pool, the app; then listen, and
 * on a signal (or an uncaught error) stop taking requests, let in-flight ones finish, close the pool, and
 * exit; past the timeout, or on a second signal, exit at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import closeWithGrace from 'close-with-grace';
import {
  type Config,
  ConfigError,
  createDatabase,
  createLogger,
  ensureDeploymentGateway,
  gracefulShutdownOptions,
  isDatabaseUnavailable,
  loadConfig,
  logShutdownCause,
} from '@referrals/core';
import { buildApp } from './app.ts';

// Longer than a request takes (the treasury timeout bounds the slowest one), shorter than the
// grace period an orchestrator gives before SIGKILL.
const SHUTDOWN_TIMEOUT_MS = 10_000;

let config: Config;
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

/**
 * The API repairs payouts, so it pays through the database's gateway or not at all: a mismatch ends
 * the process with one line and exit code 2. A database that cannot be reached yet does not keep
 * the API from starting (it answers 503 meanwhile): the check is retried until it has an answer.
 */
async function checkGateway(): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await ensureDeploymentGateway(db, config.payoutGateway, 'api');
      if (attempt > 0) logger.info({ gateway: config.payoutGateway }, 'payout gateway matches the database');
      return;
    } catch (error) {
      if (error instanceof ConfigError) {
        process.stderr.write(`api: ${error.message}\n`);
        await db.destroy().catch(() => {});
        process.exit(2);
      }
      if (!isDatabaseUnavailable(error)) throw error;
      if (attempt === 0) logger.warn('database unavailable: the payout gateway is checked once it is back');
      await sleep(Math.min(5_000, 250 * 2 ** Math.min(attempt, 5)));
    }
  }
}
const gatewayChecked = checkGateway().catch((error: unknown) => {
  logger.fatal({ err: error }, 'checking the payout gateway failed');
  process.exit(1);
});
// Normally answered in milliseconds, before the API listens; during an outage it goes on meanwhile.
await Promise.race([gatewayChecked, sleep(2_000)]);

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
