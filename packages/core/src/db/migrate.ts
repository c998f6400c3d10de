import { readdir, readFile } from 'node:fs/promises';
import { sql } from 'kysely';
import { type Migration, type MigrationProvider, type MigrationResultSet, Migrator } from 'kysely/migration';
import { MIGRATIONS_DIR } from '@referrals/db';
import type { Database } from './database.ts';

export { MIGRATIONS_DIR };

/** Forward-only plain SQL files, applied in file-name order: `0001_schema.sql`, `0002_….sql`. */
class SqlFileMigrationProvider implements MigrationProvider {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(this.#dir)).filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f)).sort();
    const migrations: Record<string, Migration> = {};
    for (const file of files) {
      const text = await readFile(`${this.#dir}/${file}`, 'utf8');
      migrations[file.replace(/\.sql$/, '')] = { up: async (db) => void (await sql.raw(text).execute(db)) };
    }
    return migrations;
  }
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

export interface MigrateResult {
  applied: string[];
  latest: string | undefined;
}

/**
 * Applies every pending migration (Kysely's migrator runs them in one transaction under an advisory
 * lock, so concurrent starts are safe). A database that has migrations this code does not know is
 * refused: it was migrated by a newer release.
 */
export async function migrate(db: Database, dir = MIGRATIONS_DIR): Promise<MigrateResult> {
  const known = Object.keys(await new SqlFileMigrationProvider(dir).getMigrations());
  const unknown = (await executedMigrations(db)).filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new MigrationError(
      `the database has migrations this code does not know (${unknown.join(', ')}); it was migrated by a newer release — deploy that release or restore the database`,
    );
  }
  const migrator = new Migrator({ db, provider: new SqlFileMigrationProvider(dir) });
  const { error, results }: MigrationResultSet = await migrator.migrateToLatest();
  if (error) {
    const message = error instanceof Error ? error.message : String(error);
    const failed = results?.find((r) => r.status === 'Error');
    throw new MigrationError(`migration ${failed?.migrationName ?? '?'} failed: ${message}`, { cause: error });
  }
  return {
    applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName),
    latest: known.at(-1),
  };
}

/** Names of the migrations the database records as applied; none before the first migration. */
async function executedMigrations(db: Database): Promise<string[]> {
  const { rows } = await sql<{
    present: boolean;
  }>`select to_regclass('kysely_migration') is not null as present`.execute(db);
  if (!rows[0]?.present) return [];
  const executed = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db);
  return executed.rows.map((r) => r.name);
}
