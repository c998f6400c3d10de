import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '@referrals/core';
import { configurationTable, withConfigurationTable } from '../src/config-table.ts';

const readme = readFileSync(join(import.meta.dirname, '..', '..', '..', 'README.md'), 'utf8');

describe("README's configuration table", () => {
  it('is the one the schema generates (run `pnpm docs:config` after changing the schema)', () => {
    expect(readme).toBe(withConfigurationTable(readme));
  });

  it('describes every variable, and says what leaving it unset means when it has no default', () => {
    const undocumented = Object.entries(ConfigSchema.properties as Record<string, TSchema>)
      .filter(([, schema]) => !schema.description || (schema.default === undefined && !schema.whenUnset))
      .map(([name]) => name);
    expect(undocumented).toEqual([]);
  });

  it('has one row per variable, with its default and bounds', () => {
    const table = configurationTable();
    for (const name of Object.keys(ConfigSchema.properties)) expect(table).toContain(`| \`${name}\` |`);
    expect(table).toContain('| `PORT` | `3000` | integer 0 … 65535 |');
    expect(table).toContain('| `PAYOUT_GATEWAY` | `ledger` | `ledger`, `http` |');
  });
});
