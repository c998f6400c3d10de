/** Rewrites README's configuration table from the configuration schema (`pnpm docs:config`). */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withConfigurationTable } from '../src/config-table.ts';

const readmePath = join(import.meta.dirname, '..', '..', '..', 'README.md');
const before = readFileSync(readmePath, 'utf8');
const after = withConfigurationTable(before);
writeFileSync(readmePath, after);
console.log(
  before === after ? 'README configuration table already up to date' : 'README configuration table rewritten',
);
