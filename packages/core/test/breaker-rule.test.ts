import { describe, expect, it } from 'vitest';
import {
  BREAKER_FAILURES,
  nextProbeIntervalMs,
  opensBreaker,
  PROBE_FIRST_MS,
  PROBE_MAX_MS,
  probeDue,
} from '../src/treasury/breaker-rule.ts';

const at = (ms: number) => new Date(ms);

describe('the circuit breaker rule', () => {
  it('opens a closed breaker on the run of transient failures, not one before', () => {
    expect(opensBreaker('closed', BREAKER_FAILURES - 1)).toBe(false);
    expect(opensBreaker('closed', BREAKER_FAILURES)).toBe(true);
    expect(opensBreaker('paused', BREAKER_FAILURES + 3)).toBe(false);
    expect(opensBreaker('open', BREAKER_FAILURES + 3)).toBe(false);
  });

  it('doubles the probe interval after each failed probe, from the first interval up to the cap', () => {
    expect(nextProbeIntervalMs(null)).toBe(2 * PROBE_FIRST_MS);
    expect(nextProbeIntervalMs(PROBE_FIRST_MS)).toBe(2 * PROBE_FIRST_MS);
    expect(nextProbeIntervalMs(PROBE_MAX_MS / 2 + 1)).toBe(PROBE_MAX_MS);
    expect(nextProbeIntervalMs(PROBE_MAX_MS)).toBe(PROBE_MAX_MS);
  });

  it('lets a probe go when open and its time has come, or when half-open and the prober’s lease ended', () => {
    expect(probeDue({ state: 'open', nextProbeAt: at(1000), probeUntil: null }, 999)).toBe(false);
    expect(probeDue({ state: 'open', nextProbeAt: at(1000), probeUntil: null }, 1000)).toBe(true);
    expect(probeDue({ state: 'open', nextProbeAt: null, probeUntil: null }, 1000)).toBe(false);
    expect(probeDue({ state: 'half_open', nextProbeAt: null, probeUntil: at(1000) }, 999)).toBe(false);
    expect(probeDue({ state: 'half_open', nextProbeAt: null, probeUntil: at(1000) }, 1000)).toBe(true);
    expect(probeDue({ state: 'half_open', nextProbeAt: null, probeUntil: null }, 1000)).toBe(false);
    expect(probeDue({ state: 'closed', nextProbeAt: at(0), probeUntil: at(0) }, 1000)).toBe(false);
    expect(probeDue({ state: 'paused', nextProbeAt: at(0), probeUntil: at(0) }, 1000)).toBe(false);
  });
});
