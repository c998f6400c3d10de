/**
 * `pnpm test:coverage`: the whole suite under V8 coverage, including the processes the tests spawn.
 *
 * * vitest's v8 provider measures the test processes (code vitest transformed and ran in-process);
 *   it also lists every source file, run or not, with its coverable lines.
 * * Every spawned CLI, worker, API and launcher process writes raw V8 coverage into
 *   coverage/children-raw (CHILD_V8_COVERAGE, see @referrals/testing's childProcessEnv); c8 turns
 *   it into per-file line counts. Node runs those .ts files with their types stripped to
 *   whitespace, so V8's offsets are offsets in the source itself.
 *
 * The two are merged by line: a line counts as covered when either measurement ran it, over the
 * coverable lines vitest's provider found. Branches are reported for the in-process run only (the
 * two tools number branches differently, so they cannot be merged). Writes coverage/summary.md.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const OUT = join(ROOT, 'coverage');
const CHILDREN_RAW = join(OUT, 'children-raw');
const SOURCES = 'packages/*/src/**/*.ts';

rmSync(OUT, { recursive: true, force: true });
mkdirSync(CHILDREN_RAW, { recursive: true });

const run = (command: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(command, args, { cwd: ROOT, env, stdio: 'inherit' }).status ?? 1;

const testStatus = run(
  'pnpm',
  [
    'exec',
    'vitest',
    'run',
    '--coverage.enabled',
    '--coverage.provider=v8',
    '--coverage.reporter=json',
    '--coverage.reporter=text-summary',
    // A failing test still leaves a report; instrumented processes run slower, so tests get longer.
    '--coverage.reportOnFailure',
    '--testTimeout=180000',
    '--hookTimeout=240000',
    `--coverage.reportsDirectory=${join(OUT, 'in-process')}`,
    `--coverage.include=${SOURCES}`,
    // Test file filters, as `vitest run` takes them: `pnpm test:coverage packages/cli`.
    ...process.argv.slice(2),
  ],
  { ...process.env, CHILD_V8_COVERAGE: CHILDREN_RAW, TEST_TIMEOUT_SCALE: '3' },
);
const c8Status = run('pnpm', [
  'exec',
  'c8',
  'report',
  `--temp-directory=${CHILDREN_RAW}`,
  `--reports-dir=${join(OUT, 'children')}`,
  '--reporter=json',
  `--include=${SOURCES}`,
  '--exclude=**/node_modules/**',
]);

interface FileCoverage {
  statementMap: Record<string, { start: { line: number } }>;
  s: Record<string, number>;
  branchMap: Record<string, unknown>;
  b: Record<string, number[]>;
}
type CoverageMap = Record<string, FileCoverage>;

const readMap = (file: string): CoverageMap => {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as CoverageMap;
  } catch {
    return {};
  }
};

/** Hits per line, as istanbul counts them: the statements that start on it. */
function lineHits(file: FileCoverage): Map<number, number> {
  const lines = new Map<number, number>();
  for (const [id, statement] of Object.entries(file.statementMap)) {
    const line = statement.start.line;
    lines.set(line, Math.max(lines.get(line) ?? 0, file.s[id] ?? 0));
  }
  return lines;
}

const inProcess = readMap(join(OUT, 'in-process', 'coverage-final.json'));
const children = readMap(join(OUT, 'children', 'coverage-final.json'));

interface Tally {
  lines: number;
  inProcessLines: number;
  mergedLines: number;
  branches: number;
  coveredBranches: number;
}
const packages = new Map<string, Tally>();
for (const [path, file] of Object.entries(inProcess)) {
  const name = relative(ROOT, path).split('/')[1]!;
  const tally = packages.get(name) ?? { lines: 0, inProcessLines: 0, mergedLines: 0, branches: 0, coveredBranches: 0 };
  const own = lineHits(file);
  const child = children[path] ? lineHits(children[path]) : new Map<number, number>();
  for (const [line, hits] of own) {
    tally.lines++;
    if (hits > 0) tally.inProcessLines++;
    if (hits > 0 || (child.get(line) ?? 0) > 0) tally.mergedLines++;
  }
  for (const counts of Object.values(file.b)) {
    tally.branches += counts.length;
    tally.coveredBranches += counts.filter((c) => c > 0).length;
  }
  packages.set(name, tally);
}

const pct = (part: number, whole: number) => (whole === 0 ? 'n/a' : `${((100 * part) / whole).toFixed(1)} %`);
const rows = [...packages.entries()].sort(([a], [b]) => a.localeCompare(b));
const total = rows.reduce(
  (sum, [, t]) => ({
    lines: sum.lines + t.lines,
    inProcessLines: sum.inProcessLines + t.inProcessLines,
    mergedLines: sum.mergedLines + t.mergedLines,
  }),
  { lines: 0, inProcessLines: 0, mergedLines: 0 },
);
const table = [
  '| package | lines (tests + spawned processes) | lines (test processes only) | branches (test processes only) |',
  '|---|---|---|---|',
  ...rows.map(
    ([name, t]) =>
      `| ${name} | ${pct(t.mergedLines, t.lines)} | ${pct(t.inProcessLines, t.lines)} | ${pct(t.coveredBranches, t.branches)} |`,
  ),
  `| all | ${pct(total.mergedLines, total.lines)} | ${pct(total.inProcessLines, total.lines)} | |`,
].join('\n');
writeFileSync(join(OUT, 'summary.md'), `${table}\n`);
process.stdout.write(
  `\nCoverage per package (${Object.keys(children).length} source files reached by spawned processes):\n\n${table}\n\nWritten to coverage/summary.md\n`,
);
process.exit(testStatus !== 0 ? testStatus : c8Status);
