import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, inject, test } from 'vitest';
import { runBench } from '../src/main.ts';
import { summarizeCpuProfile } from '../src/cpu-profile.ts';
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

test('a CPU profile is summed by owner, with start-up and idle time left out of the shares', () => {
  const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 9 });
  const pnpm = (pkg: string, file: string) =>
    `file:///repo/node_modules/.pnpm/${pkg}@1.0.0/node_modules/${pkg}/${file}`;
  const summary = summarizeCpuProfile({
    nodes: [
      { id: 1, callFrame: frame('(root)', '') },
      { id: 2, callFrame: frame('(idle)', '') },
      { id: 3, callFrame: frame('parseMessage', pnpm('pg-protocol', 'dist/parser.js')) },
      { id: 4, callFrame: frame('confirmPurchase', 'file:///repo/packages/core/src/purchases/confirm-purchase.ts') },
      { id: 5, callFrame: frame('compileSourceTextModule', 'node:internal/modules/esm/utils') },
      { id: 6, callFrame: frame('stringify', '') },
    ],
    samples: [2, 3, 3, 4, 5, 6, 3],
    timeDeltas: [50_000, 1000, 1000, 1000, 7000, 1000, 1000],
  });
  expect(summary.busyMs).toBe(5);
  expect(summary.startupMs).toBe(7);
  expect(summary.shares).toEqual({ 'pg driver and protocol': 60, 'our code': 20, JSON: 20 });
  expect(summary.top[0]).toEqual({
    frame: 'parseMessage (pg-protocol/dist/parser.js:10)',
    category: 'pg driver and protocol',
    percent: 60,
  });
  expect(summary.top[1]!.frame).toBe('confirmPurchase (packages/core/src/purchases/confirm-purchase.ts:10)');
});
