import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  counter,
  gauge,
  histogram,
  METRICS,
  type MetricDefinition,
  metricsTable,
  withMetricsTable,
} from '../src/metrics.ts';

const readme = readFileSync(join(import.meta.dirname, '..', '..', '..', 'README.md'), 'utf8');
const definitions: MetricDefinition[] = Object.values(METRICS);

describe('the metric vocabulary', () => {
  it('names every metric once, in Prometheus style, counters ending in _total', () => {
    const names = definitions.map((metric) => metric.name);
    expect(new Set(names).size).toBe(names.length);
    for (const metric of definitions) {
      expect(metric.name).toMatch(/^referral_[a-z_]+$/);
      expect(metric.name.endsWith('_total')).toBe(metric.type === 'counter');
      if (metric.type === 'histogram') expect(metric.buckets?.length).toBeGreaterThan(5);
    }
  });

  it('registers each definition with its name, labels and buckets', async () => {
    const registry = new Registry();
    counter(registry, METRICS.payoutRuns).inc({ outcome: 'failed' });
    gauge(registry, METRICS.treasuryGate).set({ state: 'paused' }, 1);
    histogram(registry, METRICS.confirmToCompleted).observe(0.3);
    const text = await registry.metrics();
    expect(text).toContain('referral_payout_runs_total{outcome="failed"} 1');
    expect(text).toContain('referral_treasury_gate_state{state="paused"} 1');
    expect(text).toContain('referral_payout_confirm_to_completed_seconds_bucket{le="0.25"} 0');
    expect(text).toContain('referral_payout_confirm_to_completed_seconds_bucket{le="0.5"} 1');
  });

  it("is README's metric table (run `pnpm docs:metrics` after changing it)", () => {
    expect(readme).toBe(withMetricsTable(readme));
    for (const metric of definitions) expect(metricsTable()).toContain(`| \`${metric.name}\` | ${metric.type} |`);
  });
});
