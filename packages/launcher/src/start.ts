/**
 * `pnpm start`: the whole system on one machine. Without DATABASE_URL it runs an embedded Postgres
 * whose data is kept under .data/postgres; then it applies the migrations, runs the API and the
 * worker as child processes and prints how to use them. Ctrl-C (SIGINT) or SIGTERM stops the API
 * and the worker first, then the database. A child that dies on its own takes the rest down and the
 * launcher exits non-zero.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import closeWithGrace from 'close-with-grace';
import {
  type Config,
  ConfigError,
  createDatabase,
  isDatabaseUnavailable,
  loadConfig,
  MigrationError,
  migrate,
} from '@referrals/core';
import { renderBanner } from './banner.ts';
import { clusterLocation, type EmbeddedPostgres, startEmbeddedPostgres } from './embedded-postgres.ts';
import { apiBaseUrl, dataDirectory, readOrCreateToken, REPO_ROOT } from './local-setup.ts';

const CHILD_STOP_TIMEOUT_MS = 20_000;
// The children's stop (killed past CHILD_STOP_TIMEOUT_MS), then the database's.
const STOP_TIMEOUT_MS = 45_000;
const READY_TIMEOUT_MS = 60_000;

const ENTRIES = {
  api: join(REPO_ROOT, 'packages/api/src/server.ts'),
  worker: join(REPO_ROOT, 'packages/worker/src/main.ts'),
} as const;
type ChildName = keyof typeof ENTRIES;
const FOLLOW_LAUNCHER = pathToFileURL(join(REPO_ROOT, 'packages/launcher/src/follow-launcher.ts')).href;

const say = (line = '') => process.stdout.write(`${line}\n`);
const complain = (line: string) => process.stderr.write(`${line}\n`);

let config: Config;
try {
  config = loadConfig(process.env, { requireDatabaseUrl: false });
} catch (error) {
  complain(error instanceof ConfigError ? `configuration: ${error.message}` : String(error));
  process.exit(2);
}

const dataDir = dataDirectory();
const children = new Map<ChildName, ChildProcess>();
let database: EmbeddedPostgres | undefined;
let stopping = false;
let failed = false;
// Startup steps wait here once a shutdown has begun; the process exits from the shutdown.
const untilExit = new Promise<never>(() => {});

const grace = closeWithGrace(
  {
    delay: STOP_TIMEOUT_MS,
    logger: { error: (error: unknown) => complain(`while stopping: ${describe(error)}`) },
    onTimeout: (delay) => complain(`did not stop within ${delay / 1000} s; exiting`),
    // A second Ctrl-C stops waiting: the API and the worker are killed, and the embedded Postgres
    // helper still stops the database cleanly once this process's channel to it closes.
    onSecondSignal: (signal) => {
      complain(`${signal} again: killing the API and the worker`);
      for (const child of children.values()) child.kill('SIGKILL');
    },
  },
  async ({ signal, err }) => {
    stopping = true;
    if (signal) say(`\n${signal}: stopping…`);
    if (err) {
      complain(describe(err));
      failed = true;
    }
    await Promise.all([...children.values()].map((child) => stopChild(child)));
    if (database) {
      say('stopping the embedded Postgres…');
      await database.stop();
    }
    say('stopped.');
    // close-with-grace exits 0 after a close it was asked for; one caused by a failure exits 1.
    if (failed) process.exit(1);
  },
);

/** Something died or failed on its own: say so, stop everything else, exit 1. */
function fail(reason: string): void {
  if (stopping) return;
  complain(reason);
  failed = true;
  grace.close();
}

/** Connecting to a name with several addresses fails with an AggregateError without a message. */
function unreachableReason(error: unknown): string {
  if (error instanceof AggregateError) return error.errors.map(unreachableReason).join('; ');
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  return describe(error) || code || 'no answer';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function startChild(name: ChildName, env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, ['--import', FOLLOW_LAUNCHER, ENTRIES[name]], {
    cwd: REPO_ROOT,
    env,
    // Own process group: only the launcher signals it, once, in the right order.
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.set(name, child);
  child.once('exit', (code, signal) => {
    fail(`the ${name} exited unexpectedly (${signal ?? `exit code ${code}`}); stopping everything`);
  });
  return child;
}

async function waitUntilReady(baseUrl: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (stopping) await untilExit;
    try {
      const response = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline)
      throw new Error(`the API did not become ready at ${baseUrl}/readyz within ${READY_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// Backoff while the database cannot be reached at the first migration: quick to notice it come up,
// gentle on one that stays down.
const MIGRATE_RETRY_FIRST_MS = 250;
const MIGRATE_RETRY_MAX_MS = 5_000;

/**
 * Applies the migrations, waiting for a database that cannot be reached yet (a DATABASE_URL whose
 * server is starting or restarting) instead of exiting: one line when it is found unreachable, one
 * when it answers, however many attempts in between. Any other failure (a newer database, a broken
 * migration) ends the start as before.
 */
async function migrateWhenReachable(databaseUrl: string): Promise<{ applied: string[]; latest: string | undefined }> {
  let downSince: number | undefined;
  for (let attempt = 0; ; attempt++) {
    if (stopping) await untilExit;
    const db = createDatabase(databaseUrl, { max: 1, applicationName: 'referral-payouts-launcher' });
    try {
      const result = await migrate(db);
      if (downSince !== undefined)
        say(`the database answers now (after ${Math.round((Date.now() - downSince) / 1000)} s)`);
      return result;
    } catch (error) {
      const cause = error instanceof MigrationError ? error.cause : error;
      if (!isDatabaseUnavailable(error) && !isDatabaseUnavailable(cause)) throw error;
      if (downSince === undefined) {
        downSince = Date.now();
        say(
          `the database at ${redactPassword(databaseUrl)} cannot be reached (${unreachableReason(cause)}); ` +
            'retrying until it answers (Ctrl-C to stop)',
        );
      }
    } finally {
      await db.destroy().catch(() => {});
    }
    await new Promise((r) =>
      setTimeout(r, Math.min(MIGRATE_RETRY_MAX_MS, MIGRATE_RETRY_FIRST_MS * 2 ** Math.min(attempt, 5))),
    );
  }
}

async function main() {
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  const admin = config.adminApiToken
    ? { token: config.adminApiToken, file: undefined }
    : readOrCreateToken(dataDir, 'admin');
  const service = config.serviceApiToken
    ? { token: config.serviceApiToken, file: undefined }
    : readOrCreateToken(dataDir, 'service');

  let databaseUrl = config.databaseUrl;
  let freshStart: string | undefined;
  if (databaseUrl === '') {
    const cluster = clusterLocation(dataDir);
    if (cluster.movedBecause) {
      say(
        `the database runs as the "postgres" user, which cannot enter ${cluster.movedBecause.dir} ` +
          `(mode 0${cluster.movedBecause.mode.toString(8)}), so its data lives in ${cluster.dir}`,
      );
    }
    say(`starting the embedded Postgres on port ${config.embeddedPgPort} (data in ${cluster.dir})…`);
    database = startEmbeddedPostgres({
      dataDir: cluster.dir,
      port: config.embeddedPgPort,
      logFile: join(dataDir, 'postgres.log'),
    });
    freshStart = `stop it, then: rm -rf ${cluster.dir}${cluster.movedBecause ? ` ${dataDir}` : ''}`;
    const { initialised } = await database.ready;
    if (stopping) await untilExit;
    say(initialised ? 'created a new database cluster' : 'using the existing database cluster');
    void database.exited.then(({ code, signal }) => {
      fail(
        `the embedded Postgres stopped unexpectedly (${signal ?? `exit code ${code}`}); see ${join(dataDir, 'postgres.log')}`,
      );
    });
    databaseUrl = database.url;
  }

  const { applied, latest } = await migrateWhenReachable(databaseUrl);
  say(
    applied.length
      ? `applied migrations ${applied.join(', ')}`
      : `database schema is up to date (${latest ?? 'no migrations'})`,
  );
  if (stopping) await untilExit;

  // Unset, the worker's metrics take a free port; the banner says which.
  const env = {
    WORKER_METRICS_PORT: '0',
    ...process.env,
    DATABASE_URL: databaseUrl,
    ADMIN_API_TOKEN: admin.token,
    SERVICE_API_TOKEN: service.token,
  };
  startChild('api', env);
  const worker = startChild('worker', env);
  const workerStarted = new Promise<{ metricsUrl?: string }>((resolve) => {
    worker.on('message', (message: { type?: string; metricsUrl?: string }) => {
      if (message.type === 'worker-ready') resolve(message);
    });
  });

  const apiUrl = apiBaseUrl(config);
  await waitUntilReady(apiUrl);
  const { metricsUrl } = await workerStarted;
  if (stopping) await untilExit;

  const shownDatabaseUrl = database ? databaseUrl : redactPassword(databaseUrl);
  say(
    renderBanner({
      apiUrl,
      consoleUrl: `${apiUrl}/console`,
      workerMetricsUrl: metricsUrl,
      tokens: [
        { label: 'Admin token', value: admin.token, note: admin.file ? `kept in ${admin.file}` : undefined },
        {
          label: 'Service token',
          value: service.token,
          note: `${service.file ? `kept in ${service.file}; ` : ''}the marketplace routes' credential`,
        },
      ],
      database: {
        label: 'Database',
        value: shownDatabaseUrl,
        note: database ? `embedded, data in ${database.dataDir}` : undefined,
      },
      freshStart,
    }),
  );
}

function redactPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

main().catch((error: unknown) => fail(describe(error)));
