/** Rewrites README's metric table from core's metric vocabulary (`pnpm docs:metrics`). */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withMetricsTable } from '../src/metrics.ts';

const readmePath = join(import.meta.dirname, '..', '..', '..', 'README.md');
const before = readFileSync(readmePath, 'utf8');
const after = withMetricsTable(before);
writeFileSync(readmePath, after);
console.log(before === after ? 'README metric table already up to date' : 'README metric table rewritten');
