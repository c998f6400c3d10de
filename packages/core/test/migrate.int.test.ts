import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { MigrationError, migrate } from '@referrals/core';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();

describe('migrate', () => {
  it('is a no-op on an up-to-date database', async () => {
    const result = await migrate(t.db);
    expect(result.applied).toEqual([]);
    expect(result.latest).toBe('0001_schema');
  });

  it('refuses a database migrated by a newer release', async () => {
    await sql`insert into kysely_migration (name, timestamp) values ('9999_from_the_future', now()::text)`.execute(t.db);
    await expect(migrate(t.db)).rejects.toThrow(MigrationError);
    await expect(migrate(t.db)).rejects.toThrow(/newer release/);
  });
});
