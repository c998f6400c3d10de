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
import { type Config, ConfigError, createDatabase, loadConfig, migrate } from '@referrals/core';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './embedded-postgres.ts';
import { apiBaseUrl, dataDirectory, readOrCreateAdminToken, REPO_ROOT } from './local-setup.ts';

const CHILD_STOP_TIMEOUT_MS = 20_000;
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
let shuttingDown: Promise<never> | undefined;
let signals = 0;

function onSignal(signal: NodeJS.Signals) {
  signals++;
  if (signals === 1) {
    say(`\n${signal}: stopping…`);
    void shutdown(0);
  } else {
    // A second Ctrl-C: stop waiting for the API and the worker; the database still stops cleanly.
    say(`${signal} again: killing the API and the worker`);
    for (const child of children.values()) child.kill('SIGKILL');
  }
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
process.on('SIGHUP', onSignal);

function shutdown(code: number): Promise<never> {
  shuttingDown ??= (async () => {
    try {
      await Promise.all([...children.values()].map((child) => stopChild(child)));
      if (database) {
        say('stopping the embedded Postgres…');
        await database.stop();
      }
      say('stopped.');
    } catch (error) {
      complain(`while stopping: ${error instanceof Error ? error.message : String(error)}`);
      code ||= 1;
    }
    process.exit(code);
  })();
  return shuttingDown;
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
    if (!shuttingDown) {
      complain(`the ${name} exited unexpectedly (${signal ?? `exit code ${code}`}); stopping everything`);
      void shutdown(1);
    }
  });
  return child;
}

async function waitUntilReady(baseUrl: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (shuttingDown) await shuttingDown;
    try {
      const response = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`the API did not become ready at ${baseUrl}/readyz within ${READY_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main() {
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  const admin = config.adminApiToken ? { token: config.adminApiToken, file: undefined } : readOrCreateAdminToken(dataDir);

  let databaseUrl = config.databaseUrl;
  if (databaseUrl === '') {
    const pgDataDir = join(dataDir, 'postgres');
    say(`starting the embedded Postgres on port ${config.embeddedPgPort} (data in ${pgDataDir})…`);
    database = startEmbeddedPostgres({ dataDir: pgDataDir, port: config.embeddedPgPort, logFile: join(dataDir, 'postgres.log') });
    const { initialised } = await database.ready;
    if (shuttingDown) await shuttingDown;
    say(initialised ? 'created a new database cluster' : 'using the existing database cluster');
    void database.exited.then(({ code, signal }) => {
      if (!shuttingDown) {
        complain(`the embedded Postgres stopped unexpectedly (${signal ?? `exit code ${code}`}); see ${join(dataDir, 'postgres.log')}`);
        void shutdown(1);
      }
    });
    databaseUrl = database.url;
  }

  const db = createDatabase(databaseUrl, { max: 1, applicationName: 'referral-payouts-launcher' });
  try {
    const { applied, latest } = await migrate(db);
    say(applied.length ? `applied migrations ${applied.join(', ')}` : `database schema is up to date (${latest ?? 'no migrations'})`);
  } finally {
    await db.destroy();
  }
  if (shuttingDown) await shuttingDown;

  const env = { ...process.env, DATABASE_URL: databaseUrl, ADMIN_API_TOKEN: admin.token };
  startChild('api', env);
  startChild('worker', env);

  const apiUrl = apiBaseUrl(config);
  await waitUntilReady(apiUrl);

  const shownDatabaseUrl = database ? databaseUrl : redactPassword(databaseUrl);
  say();
  say('Referral payouts is running.');
  say();
  say(`  API          ${apiUrl}`);
  say(`  API docs     ${apiUrl}/docs`);
  say(`  Admin token  ${admin.token}${admin.file ? `  (kept in ${admin.file})` : ''}`);
  say(`  Database     ${shownDatabaseUrl}${database ? '  (embedded)' : ''}`);
  say();
  say('Try it:');
  say(`  curl -s -H "Authorization: Bearer ${admin.token}" ${apiUrl}/api/marketplace/referral-payouts/summary`);
  say();
  say('Sample data: pnpm demo        Operator CLI: DATABASE_URL=' + shownDatabaseUrl + ' npm run manage-referral-payouts -- --help');
  say('Stop: Ctrl-C');
  say();
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

main().catch((error: unknown) => {
  if (shuttingDown) return;
  complain(error instanceof Error ? error.message : String(error));
  void shutdown(1);
});
