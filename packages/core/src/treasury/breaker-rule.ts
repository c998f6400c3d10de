/**
 * The circuit breaker's rule, pure so it reads (and is tested) without a database.
 *
 * BREAKER_FAILURES transient failures in a row, counted across all purchases and all processes,
 * open it (any answer from the treasury — a payment or a refusal — resets the count).
 * A run rather than an error rate over a window: it needs one counter instead of a sliding window,
 * it trips within a handful of calls when the treasury is down, and the intermittent failures an
 * error rate would catch are what per-purchase retries already absorb.
 * While open, one transfer at a time may probe the treasury, first PROBE_FIRST_MS after opening,
 * then at an interval that doubles after each failed probe up to PROBE_MAX_MS; the first probe the
 * treasury answers closes the breaker.
 */

import type { TreasuryGateState } from '../db/types.ts';

export const BREAKER_FAILURES = 5;
export const PROBE_FIRST_MS = 1_000;
export const PROBE_MAX_MS = 30_000;

/** Why an open or half-open breaker is not closed, as the summary and the console say it. */
export const BREAKER_REASON = `${BREAKER_FAILURES} transient treasury failures in a row`;

/** Whether this run of transient failures opens a closed breaker. */
export const opensBreaker = (state: TreasuryGateState, consecutiveFailures: number): boolean =>
  state === 'closed' && consecutiveFailures >= BREAKER_FAILURES;

/** The wait before the next probe after a failed one: double the last, up to the cap. */
export const nextProbeIntervalMs = (lastIntervalMs: number | null): number =>
  Math.min(PROBE_MAX_MS, (lastIntervalMs ?? PROBE_FIRST_MS) * 2);

/** The gate's probe timing, as recorded. */
export interface ProbeTiming {
  state: TreasuryGateState;
  /** While open: when the next probe may go. */
  nextProbeAt: Date | null;
  /** While half-open: when the probing process's lease ends and another may take over. */
  probeUntil: Date | null;
}

/** Whether a probe may be claimed at `nowMs` (the database's clock). */
export function probeDue(gate: ProbeTiming, nowMs: number): boolean {
  if (gate.state === 'open') return gate.nextProbeAt !== null && gate.nextProbeAt.getTime() <= nowMs;
  // half_open: the probe's owner may have died; its lease says when another may take over.
  return gate.state === 'half_open' && gate.probeUntil !== null && gate.probeUntil.getTime() <= nowMs;
}
