import { readdir } from 'node:fs/promises';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR, MigrationError, migrate } from '@referrals/core';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();

describe('migrate', () => {
  it('is a no-op on an up-to-date database', async () => {
    const result = await migrate(t.db);
    expect(result.applied).toEqual([]);
    const newest = (await readdir(MIGRATIONS_DIR))
      .filter((f) => f.endsWith('.sql'))
      .sort()
      .at(-1);
    expect(result.latest).toBe(newest?.replace(/\.sql$/, ''));
  });

  it('refuses a database migrated by a newer release', async () => {
    await sql`insert into kysely_migration (name, timestamp) values ('9999_from_the_future', now()::text)`.execute(
      t.db,
    );
    await expect(migrate(t.db)).rejects.toThrow(MigrationError);
    await expect(migrate(t.db)).rejects.toThrow(/newer release/);
  });
});
