/**
 * The treasury gate as recorded: the circuit breaker and the operator's pause, one row in Postgres
 * shared by every process, so two workers on two machines stop and start together and the API and
 * CLI show what they see. Every change takes the row's lock and logs a change of state as an event.
 */

import { sql, type UpdateObject } from 'kysely';
import type { Database, Tx } from '../db/database.ts';
import type { Actor, DB, TreasuryGateRow, TreasuryGateState } from '../db/types.ts';
import { BREAKER_REASON } from './breaker-rule.ts';

export const TREASURY_GATE_STATES: readonly TreasuryGateState[] = ['closed', 'open', 'half_open', 'paused'];

export interface TreasuryGateView {
  state: TreasuryGateState;
  since: Date;
  /** Why it is not closed: the operator's reason, or the breaker's. */
  reason: string | null;
  /** Who paused payouts (while paused). */
  by: string | null;
  lastError: string | null;
  lastErrorAt: Date | null;
  /** While open: when the next probe may go. */
  nextProbeAt: Date | null;
  consecutiveFailures: number;
}

export interface GateTransition {
  from: TreasuryGateState;
  to: TreasuryGateState;
  actor: Actor;
  operator: string | null;
  reason: string | null;
  error: string | null;
}

export function viewOf(row: TreasuryGateRow): TreasuryGateView {
  return {
    state: row.state,
    since: row.since,
    reason: row.state === 'paused' ? row.paused_reason : row.state === 'closed' ? null : BREAKER_REASON,
    by: row.paused_by,
    lastError: row.last_error,
    lastErrorAt: row.last_error_at,
    nextProbeAt: row.next_probe_at,
    consecutiveFailures: row.consecutive_failures,
  };
}

/** The gate as recorded now (for the summary, metrics and the console). */
export async function readTreasuryGate(db: Database | Tx): Promise<TreasuryGateView> {
  return viewOf(await db.selectFrom('treasury_gate').selectAll().executeTakeFirstOrThrow());
}

/** The gate as the summary shows it (API and `--summary`). */
export interface TreasurySummary {
  state: TreasuryGateState;
  since: string;
  reason: string | null;
  by: string | null;
  lastError: string | null;
}

export function summarizeGate(view: TreasuryGateView): TreasurySummary {
  return {
    state: view.state,
    since: view.since.toISOString(),
    reason: view.reason,
    by: view.by,
    lastError: view.lastError,
  };
}

export const treasurySummary = async (db: Database): Promise<TreasurySummary> =>
  summarizeGate(await readTreasuryGate(db));

export const lockGate = (trx: Tx) => trx.selectFrom('treasury_gate').selectAll().forUpdate().executeTakeFirstOrThrow();

export const CLEAR_PROBE = {
  probe_interval_ms: null,
  next_probe_at: null,
  probe_owner: null,
  probe_until: null,
} as const;

type GateChange = Omit<UpdateObject<DB, 'treasury_gate'>, 'id' | 'since'>;

/** A change of the gate row, with the transition it made when its state moved. */
export interface GateChanged {
  row: TreasuryGateRow;
  transition: GateTransition | undefined;
}

/**
 * Applies a change to the locked gate row; a change of state also resets `since`, appends the event
 * and is reported once, by the process that made it.
 */
export async function changeGate(
  trx: Tx,
  previous: TreasuryGateRow,
  change: GateChange,
  event: Omit<GateTransition, 'from' | 'to'>,
): Promise<GateChanged> {
  const to = (change.state as TreasuryGateState | undefined) ?? previous.state;
  const moved = to !== previous.state;
  const row = await trx
    .updateTable('treasury_gate')
    .set({ ...change, ...(moved ? { since: sql<Date>`now()` } : {}) })
    .returningAll()
    .executeTakeFirstOrThrow();
  let transition: GateTransition | undefined;
  if (moved) {
    transition = { from: previous.state, to, ...event };
    await trx
      .insertInto('treasury_gate_events')
      .values({
        from_state: previous.state,
        to_state: to,
        actor: event.actor,
        operator: event.operator,
        reason: event.reason,
        error: event.error,
      })
      .execute();
  }
  return { row, transition };
}
