import type { LagBucket } from '@referrals/core';
import { format } from './format.ts';

export interface LagChart {
  width: number;
  height: number;
  /** Top of the scale, in seconds, and its label. */
  scaleLabel: string;
  bars: { x: number; width: number; maxY: number; maxHeight: number; p50Y: number | null; label: string }[];
  completed: number;
  summary: string;
}

const WIDTH = 520;
const HEIGHT = 120;
const GAP = 4;

/**
 * Geometry of the confirm → completed lag chart, drawn by the template as an inline SVG: no script,
 * no chart library, so it renders with JavaScript off and under a strict CSP. A bar is the slowest
 * purchase of its bucket, the tick across it the median.
 */
export function lagChart(buckets: LagBucket[]): LagChart {
  const top = Math.max(0.001, ...buckets.map((b) => b.maxSeconds ?? 0));
  const slot = WIDTH / Math.max(1, buckets.length);
  const y = (seconds: number) => HEIGHT - (seconds / top) * HEIGHT;
  const completed = buckets.reduce((n, b) => n + b.completed, 0);
  return {
    width: WIDTH,
    height: HEIGHT,
    scaleLabel: format.lag(top),
    bars: buckets.map((b, i) => ({
      x: i * slot + GAP / 2,
      width: slot - GAP,
      maxY: b.maxSeconds === null ? HEIGHT : y(b.maxSeconds),
      maxHeight: b.maxSeconds === null ? 0 : HEIGHT - y(b.maxSeconds),
      p50Y: b.p50Seconds === null ? null : y(b.p50Seconds),
      label: `${format.time(b.start).slice(11, 16)}: ${b.completed} completed${b.completed > 0 ? `, median ${format.lag(b.p50Seconds)}, slowest ${format.lag(b.maxSeconds)}` : ''}`,
    })),
    completed,
    summary:
      completed === 0
        ? 'No purchase completed in the last hour.'
        : `${completed} completed in the last hour; the slowest took ${format.lag(top)} from confirm to completed.`,
  };
}
