import { afterAll, beforeAll, inject, onTestFailed, beforeEach } from 'vitest';
import { createDatabase, type Database } from '@referrals/core';
import { createDatabaseFromTemplate, type TestDatabase } from './postgres.ts';
import { type FakeTreasury, startFakeTreasury, type TreasuryMode } from './fake-treasury.ts';

export interface TestDatabaseHandle {
  /** Kysely on this file's own database; valid inside tests and hooks. */
  readonly db: Database;
  readonly url: string;
  readonly name: string;
}

/**
 * Gives the calling test file its own database cloned from the migrated template. The database is
 * dropped after the file unless a test failed, so a failure can be inspected with psql.
 * TEST_KEEP_FAILED_DATABASES=0 drops it all the same: a mutation run fails tests on purpose, and
 * keeping their databases left 1 422 of them (12 GB) after one morning's runs.
 */
export function useTestDatabase(): TestDatabaseHandle {
  let database: TestDatabase | undefined;
  let db: Database | undefined;
  let failed = false;

  beforeAll(async () => {
    database = await createDatabaseFromTemplate(inject('postgresAdminUrl'), inject('postgresTemplate'));
    db = createDatabase(database.url, { max: 10, applicationName: 'referral-payouts-test' });
  });
  beforeEach(() => {
    onTestFailed(() => {
      failed = true;
    });
  });
  afterAll(async () => {
    await db?.destroy();
    if (database && (!failed || process.env.TEST_KEEP_FAILED_DATABASES === '0')) await database.drop();
    else if (database) console.error(`kept test database ${database.name} for inspection`);
  });

  return {
    get db() {
      if (!db) throw new Error('test database is not ready: use it inside a test or hook');
      return db;
    },
    get url() {
      if (!database) throw new Error('test database is not ready');
      return database.url;
    },
    get name() {
      if (!database) throw new Error('test database is not ready');
      return database.name;
    },
  };
}

/**
 * A fake treasury for the test file: started before its tests, closed after them, in the mode given
 * (default: pays every transfer). Use it inside tests and hooks, as the database.
 */
export function useFakeTreasury(initial?: TreasuryMode): FakeTreasury {
  let treasury: FakeTreasury | undefined;
  beforeAll(async () => {
    treasury = await startFakeTreasury(initial);
  });
  afterAll(() => treasury?.close());
  const current = (): FakeTreasury => {
    if (!treasury) throw new Error('fake treasury is not started: use it inside a test or hook');
    return treasury;
  };
  // Every member reads the started treasury (its getters included), so the handle can be taken at
  // the top of the file, before the treasury exists.
  return new Proxy({} as FakeTreasury, {
    get(_, key) {
      const target = current();
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
