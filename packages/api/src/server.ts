/**
 * API entry point: configuration, the root logger, the database pool, the app; then listen, and
 * on SIGTERM/SIGINT stop taking requests, let in-flight ones finish, close the pool, and exit.
 */
import pino from 'pino';
import { ConfigError, createDatabase, loadConfig } from '@referrals/core';
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

let shuttingDown = false;
async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) {
    logger.warn({ signal }, 'second signal: exiting now');
    process.exit(1);
  }
  shuttingDown = true;
  logger.info({ signal }, 'shutting down');
  const force = setTimeout(() => {
    logger.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'shutdown timed out: exiting with requests still open');
    process.exit(1);
  }, SHUTDOWN_TIMEOUT_MS);
  force.unref();
  try {
    await app.close();
    await db.destroy();
    logger.info('stopped');
    process.exit(0);
  } catch (error) {
    logger.error({ err: error }, 'shutdown failed');
    process.exit(1);
  }
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

try {
  const address = await app.listen({ host: config.host, port: config.port });
  logger.info({ url: address, docs: `${address}/docs` }, `api listening on ${address}`);
} catch (error) {
  logger.fatal({ err: error }, 'api could not start');
  await db.destroy().catch(() => {});
  process.exit(1);
}
