import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import pg from 'pg';
import { createDatabase, MIGRATIONS_DIR, migrate } from '@referrals/core';

/**
 * Postgres for tests: TEST_DATABASE_URL when set, otherwise a throw-away testcontainers Postgres.
 * testcontainers is imported lazily so machines without Docker never load it.
 */
export interface PostgresServer {
  /** Connection string of a database on the server that can CREATE DATABASE. */
  adminUrl: string;
  stop(): Promise<void>;
}

export async function startPostgres(env = process.env): Promise<PostgresServer> {
  if (env.TEST_DATABASE_URL) return { adminUrl: env.TEST_DATABASE_URL, stop: async () => {} };
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const container = await new PostgreSqlContainer('postgres:16-alpine').start();
  return { adminUrl: container.getConnectionUri(), stop: async () => void (await container.stop()) };
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
  for (const file of (await readdir(MIGRATIONS_DIR)).sort()) hash.update(file).update(await readFile(`${MIGRATIONS_DIR}/${file}`));
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
export async function createDatabaseFromTemplate(adminUrl: string, template: string, prefix = 'rp_test'): Promise<TestDatabase> {
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
    drop: () => withAdmin(adminUrl, async (client) => void (await client.query(`drop database if exists ${name} with (force)`))),
  };
}

/**
 * Drops test databases left by earlier runs (kept then because a test failed) once they are a day
 * old; younger ones may belong to a run that is still going.
 */
export async function dropStaleDatabases(adminUrl: string, prefix = 'rp_test', maxAgeMs = 24 * 3600_000): Promise<void> {
  await withAdmin(adminUrl, async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      `select datname from pg_database where datname like $1`,
      [`${prefix}\\_%`],
    );
    for (const { datname } of rows) {
      const created = Number.parseInt(datname.slice(prefix.length + 1).split('_')[0] ?? '', 36);
      if (Number.isFinite(created) && Date.now() - created < maxAgeMs) continue;
      await client.query(`drop database if exists ${datname} with (force)`);
    }
  });
}
