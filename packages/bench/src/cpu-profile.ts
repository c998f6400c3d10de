/**
 * Where a process spent its CPU, read from the `.cpuprofile` that `node --cpu-prof` writes when the
 * process exits: self time per function, summed by who owns the code (our packages, the pg driver,
 * fastify, validation, JSON, logging, …) and the top frames. Idle time is left out of the shares.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface CpuProfileSummary {
  /** Sampled time that was neither idle nor loading modules, ms. */
  busyMs: number;
  /** Loading and type-stripping modules at start-up, ms: a fixed cost, left out of the shares. */
  startupMs: number;
  /** Share of busy time per category, in % (sums to 100). */
  shares: Record<string, number>;
  /** The functions with the most self time: `name (file:line)` and % of busy time. */
  top: { frame: string; category: string; percent: number }[];
}

/** Categories, first match wins; `url` is the frame's script (a file: URL or `node:…`). */
const STARTUP = 'start-up (loading modules)';
const CATEGORIES: { name: string; test: (frame: CallFrame) => boolean }[] = [
  {
    name: STARTUP,
    test: (f) =>
      f.url.startsWith('node:internal/modules/') ||
      f.url.includes('amaro') ||
      f.url.startsWith('node:internal/bootstrap/') ||
      f.url.startsWith('wasm://'),
  },
  { name: 'garbage collection', test: (f) => f.functionName === '(garbage collector)' },
  { name: 'JSON', test: (f) => f.url === '' && /^(parse|stringify|JSONParse|JSONStringify)$/.test(f.functionName) },
  {
    name: 'pg driver and protocol',
    test: (f) => /node_modules\/\.pnpm\/(pg|pg-protocol|pg-pool|pg-types)@/.test(f.url),
  },
  { name: 'query building (kysely)', test: (f) => f.url.includes('/kysely@') },
  { name: 'pg-boss', test: (f) => f.url.includes('/pg-boss@') },
  {
    name: 'validation and serialization',
    test: (f) =>
      /\/(ajv|ajv-formats|fast-json-stringify|fast-uri|@sinclair\+typebox|@fastify\+ajv-compiler)@/.test(f.url),
  },
  { name: 'logging (pino)', test: (f) => /\/(pino|sonic-boom|pino-std-serializers|thread-stream)@/.test(f.url) },
  { name: 'metrics (prom-client)', test: (f) => f.url.includes('/prom-client@') },
  {
    name: 'fastify (routing, hooks, reply)',
    test: (f) => /\/(fastify|find-my-way|avvio|@fastify\+[a-z-]+)@/.test(f.url),
  },
  { name: 'other dependencies', test: (f) => f.url.includes('/node_modules/') },
  { name: 'our code', test: (f) => f.url.includes('/packages/') },
  {
    name: 'node: http and net',
    test: (f) => /^node:(internal\/)?(http|_http|net|stream|internal\/streams)/.test(f.url),
  },
  { name: 'node: other', test: (f) => f.url.startsWith('node:') },
  { name: 'V8 and native', test: () => true },
];

const IDLE = new Set(['(idle)', '(root)']);

function categoryOf(frame: CallFrame): string {
  return CATEGORIES.find((c) => c.test(frame))!.name;
}

function frameName(frame: CallFrame): string {
  const name = frame.functionName || '(anonymous)';
  if (!frame.url) return name;
  const file = frame.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\/\.pnpm\/[^/]+\/node_modules\//, '');
  const short = file.includes('/packages/') ? file.slice(file.indexOf('/packages/') + 1) : file;
  return `${name} (${short}:${frame.lineNumber + 1})`;
}

export function summarizeCpuProfile(profile: CpuProfile, topCount = 12): CpuProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMicros = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const byCategory = new Map<string, number>();
  const byFrame = new Map<string, { category: string; micros: number }>();
  let busy = 0;
  let startup = 0;
  for (const [id, micros] of selfMicros) {
    const frame = byId.get(id)?.callFrame;
    if (!frame || IDLE.has(frame.functionName) || micros <= 0) continue;
    const category = categoryOf(frame);
    if (category === STARTUP) {
      startup += micros;
      continue;
    }
    busy += micros;
    byCategory.set(category, (byCategory.get(category) ?? 0) + micros);
    const name = frameName(frame);
    const entry = byFrame.get(name) ?? { category, micros: 0 };
    entry.micros += micros;
    byFrame.set(name, entry);
  }
  const percent = (micros: number) => (busy === 0 ? 0 : Math.round((micros / busy) * 1000) / 10);
  return {
    busyMs: Math.round(busy / 1000),
    startupMs: Math.round(startup / 1000),
    shares: Object.fromEntries([...byCategory].sort((a, b) => b[1] - a[1]).map(([c, m]) => [c, percent(m)])),
    top: [...byFrame]
      .sort((a, b) => b[1].micros - a[1].micros)
      .slice(0, topCount)
      .map(([frame, { category, micros }]) => ({ frame, category, percent: percent(micros) })),
  };
}

/** Summarizes the one profile a process wrote into `dir`; undefined when it wrote none. */
export function summarizeProfileDir(dir: string): CpuProfileSummary | undefined {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  } catch {
    return undefined;
  }
  if (files.length === 0) return undefined;
  // One process per directory; should a process have forked, the largest profile is the worker's.
  const profiles = files.map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile);
  profiles.sort((a, b) => b.samples.length - a.samples.length);
  return summarizeCpuProfile(profiles[0]!);
}

/** Node options that make a process write its CPU profile into `dir` when it exits. */
export function cpuProfileArgs(dir: string): string[] {
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=500'];
}
