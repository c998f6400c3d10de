/** Latency summaries computed from every recorded sample (no histogram buckets, no averaging of percentiles). */
export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of an ascending array; NaN for no samples. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  // The epsilon keeps float noise (0.999 * 1000 = 999.0000000000001) from skipping a rank.
  const rank = Math.ceil((p * sorted.length) / 100 - 1e-9);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  const list = Array.from(sorted);
  const total = list.reduce((sum, v) => sum + v, 0);
  return {
    count: list.length,
    p50: round(percentile(list, 50)),
    p99: round(percentile(list, 99)),
    p999: round(percentile(list, 99.9)),
    max: round(list.length ? list[list.length - 1]! : Number.NaN),
    mean: round(list.length ? total / list.length : Number.NaN),
  };
}

export const round = (value: number, digits = 2) => {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
};

export const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? round(a / b, 3) : Number.NaN);
