import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createDatabase, MIGRATIONS_DIR, migrate } from '@referrals/core';
import { startEmbeddedPostgres } from '@referrals/launcher';
import { freePort } from './free-port.ts';

/**
 * Postgres for tests, the first that applies: TEST_DATABASE_URL; a testcontainers Postgres when a
 * Docker engine answers; else an embedded Postgres (the npm package `pnpm start` uses), so that
 * Node and pnpm are all a machine needs. TEST_POSTGRES=embedded|testcontainers|url forces one.
 * testcontainers is imported lazily so machines without Docker never load it.
 */
export interface PostgresServer {
  /** Connection string of a database on the server that can CREATE DATABASE. */
  adminUrl: string;
  /** One line saying which Postgres this is. */
  description: string;
  stop(): Promise<void>;
}

type PostgresSource = 'url' | 'testcontainers' | 'embedded';

export async function startPostgres(env = process.env): Promise<PostgresServer> {
  const forced = env.TEST_POSTGRES?.trim() as PostgresSource | undefined;
  if (forced && !['url', 'testcontainers', 'embedded'].includes(forced)) {
    throw new Error(`TEST_POSTGRES must be url, testcontainers or embedded (got "${forced}")`);
  }
  if (forced === 'url' || (!forced && env.TEST_DATABASE_URL)) {
    if (!env.TEST_DATABASE_URL) throw new Error('TEST_POSTGRES=url needs TEST_DATABASE_URL');
    const url = new URL(env.TEST_DATABASE_URL);
    return {
      adminUrl: env.TEST_DATABASE_URL,
      description: `Postgres from TEST_DATABASE_URL (${url.host}${url.pathname})`,
      stop: async () => {},
    };
  }
  if (forced === 'testcontainers' || (!forced && (await dockerEngineAnswers(env)))) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer(TESTCONTAINERS_IMAGE).start();
    return {
      adminUrl: container.getConnectionUri(),
      description: `Postgres in a testcontainers container (${TESTCONTAINERS_IMAGE}; set TEST_DATABASE_URL to use your own)`,
      stop: async () => void (await container.stop()),
    };
  }
  return startEmbeddedTestPostgres();
}

const TESTCONTAINERS_IMAGE = 'postgres:18-alpine';

/** GET /_ping on DOCKER_HOST (unix or tcp) or the default socket: does an engine answer? */
export function dockerEngineAnswers(env = process.env, timeoutMs = 1_500): Promise<boolean> {
  const host = env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  let target: { socketPath: string } | { host: string; port: number };
  try {
    const url = new URL(host);
    target =
      url.protocol === 'unix:' ? { socketPath: url.pathname } : { host: url.hostname, port: Number(url.port || 2375) };
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const ping = request({ ...target, path: '/_ping', timeout: timeoutMs }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    ping.on('timeout', () => ping.destroy());
    ping.on('error', () => resolve(false));
    ping.end();
  });
}

/**
 * A throw-away embedded cluster in a temporary directory (0755: as root, Postgres runs as the
 * `postgres` user, which must enter it). Durability is off: the data is deleted afterwards anyway.
 */
async function startEmbeddedTestPostgres(): Promise<PostgresServer> {
  const dir = mkdtempSync(join(tmpdir(), 'referrals-test-postgres-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  const database = startEmbeddedPostgres({
    dataDir: join(dir, 'data'),
    port,
    logFile: join(dir, 'postgres.log'),
    // Test files run in parallel, each with pools of its own, API and worker processes.
    settings: { max_connections: '400', fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
  });
  try {
    await database.ready;
  } catch (error) {
    await database.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    adminUrl: database.url,
    description: `embedded Postgres on port ${port} (no TEST_DATABASE_URL and no Docker engine; data in ${dir}, deleted afterwards)`,
    stop: async () => {
      await database.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function withAdmin<T>(adminUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Template name keyed by the migrations' content, so a changed migration gets a fresh template. */
export async function templateName(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of (await readdir(MIGRATIONS_DIR)).sort())
    hash.update(file).update(await readFile(`${MIGRATIONS_DIR}/${file}`));
  return `rp_template_${hash.digest('hex').slice(0, 12)}`;
}

/** Creates (once) a migrated template database and returns its name. */
export async function prepareTemplate(adminUrl: string): Promise<string> {
  const name = await templateName();
  await withAdmin(adminUrl, async (client) => {
    // One run at a time builds the template; the others wait here and then find it.
    await client.query('select pg_advisory_lock(7286001)');
    try {
      const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name]);
      if (rowCount) return;
      const building = `${name}_building`;
      await client.query(`drop database if exists ${building}`);
      await client.query(`create database ${building}`);
      const db = createDatabase(databaseUrl(adminUrl, building), { max: 1 });
      try {
        await migrate(db);
      } finally {
        await db.destroy();
      }
      await client.query(`alter database ${building} rename to ${name}`);
    } finally {
      await client.query('select pg_advisory_unlock(7286001)');
    }
  });
  return name;
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A fresh database cloned from the migrated template. */
export async function createDatabaseFromTemplate(
  adminUrl: string,
  template: string,
  prefix = 'rp_test',
): Promise<TestDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  await withAdmin(adminUrl, async (client) => {
    for (let attempt = 0; ; attempt++) {
      try {
        await client.query(`create database ${name} template ${template}`);
        return;
      } catch (error) {
        // Another clone of the same template is being made right now; try again shortly.
        if (attempt < 20 && /being accessed by other users/.test(String(error))) {
          await new Promise((r) => setTimeout(r, 50 + attempt * 20));
          continue;
        }
        throw error;
      }
    }
  });
  return {
    name,
    url: databaseUrl(adminUrl, name),
    drop: () =>
      withAdmin(adminUrl, async (client) => void (await client.query(`drop database if exists ${name} with (force)`))),
  };
}

/**
 * Drops test databases left by earlier runs (kept then because a test failed) once they are a day
 * old; younger ones may belong to a run that is still going.
 */
export async function dropStaleDatabases(
  adminUrl: string,
  prefix = 'rp_test',
  maxAgeMs = 24 * 3600_000,
): Promise<void> {
  await withAdmin(adminUrl, async (client) => {
    const { rows } = await client.query<{ datname: string }>(`select datname from pg_database where datname like $1`, [
      `${prefix}\\_%`,
    ]);
    for (const { datname } of rows) {
      const created = Number.parseInt(datname.slice(prefix.length + 1).split('_')[0] ?? '', 36);
      if (Number.isFinite(created) && Date.now() - created < maxAgeMs) continue;
      await client.query(`drop database if exists ${datname} with (force)`);
    }
  });
}
