import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, inject, test } from 'vitest';
import { runBench } from '../src/main.ts';
import { findPgbench } from '../src/scenarios/pgbench.ts';
import { percentile, summarize } from '../src/stats.ts';

const outputDir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
afterAll(() => rmSync(outputDir, { recursive: true, force: true }));

test('percentiles are nearest-rank over every sample', () => {
  const samples = Array.from({ length: 1000 }, (_, i) => 1000 - i);
  expect(
    percentile(
      [...samples].sort((a, b) => a - b),
      50,
    ),
  ).toBe(500);
  expect(summarize(samples)).toMatchObject({ count: 1000, p50: 500, p99: 990, p999: 999, max: 1000 });
});

test('a quick pgbench run writes a report with the physical limit and every target', async () => {
  const { report, files } = await runBench({
    adminUrl: inject('postgresAdminUrl'),
    scenarios: ['pgbench'],
    quick: true,
    drainCount: 100,
    outputDir,
  });

  expect(report.errors).toEqual({});
  expect(files.every((file) => existsSync(file))).toBe(true);
  // pgbench ships with the Postgres client; only a machine without one may skip the physical limit.
  const pgbench = report.results.pgbench!;
  if (findPgbench() === undefined) {
    expect(pgbench).toEqual({ skipped: 'pgbench is not on PATH nor in /usr/lib/postgresql/*/bin' });
  } else {
    expect(pgbench).not.toHaveProperty('skipped');
    const ran = pgbench as Exclude<typeof pgbench, { skipped: string }>;
    expect(ran.main.transactions).toBeGreaterThan(0);
    expect(ran.main.failed).toBe(0);
  }
  expect(report.summary.map((row) => row.met)).toContain('n/a');
  const markdown = readFileSync(files[0]!, 'utf8');
  expect(markdown).toContain('| target | measured | met |');
  expect(markdown).toContain('Physical limit');
});
