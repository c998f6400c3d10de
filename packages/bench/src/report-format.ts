/** How the report writes figures: milliseconds, latency rows, error counts. */
import type { LatencySummary } from './stats.ts';
import { round } from './stats.ts';

export const ms = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : `${round(v, 1)} ms`);
export const latencyHeader = '| p50 | p99 | p99.9 | max | samples |';
export const latencyCells = (l: LatencySummary | undefined) =>
  l ? `| ${ms(l.p50)} | ${ms(l.p99)} | ${ms(l.p999)} | ${ms(l.max)} | ${l.count} |` : '| – | – | – | – | 0 |';
export const errors = (e: Record<string, number>) =>
  Object.keys(e).length
    ? Object.entries(e)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')
    : 'none';
