/**
 * The circuit breaker's moves, each one transaction over the locked gate row so every process sees
 * one history: a probe claimed, a transient failure counted (opening the breaker, or keeping it open
 * after a failed probe), an answer from the treasury (closing it), a probe handed back unused.
 * `probeToken` is the caller's token when the transfer was the probe, so a probe whose lease another
 * process has since taken over changes nothing.
 */

import { sql } from 'kysely';
import type { Database } from '../db/database.ts';
import type { TreasuryGateRow } from '../db/types.ts';
import { nextProbeIntervalMs, opensBreaker, PROBE_FIRST_MS, probeDue } from './breaker-rule.ts';
import { CLEAR_PROBE, changeGate, type GateChanged, lockGate } from './gate-record.ts';

/** Claims the one half-open probe when it is due by the database's clock; `claimed` says whether it was. */
export async function claimProbe(
  db: Database,
  token: string,
  probeLeaseMs: number,
): Promise<GateChanged & { claimed: boolean }> {
  return db.transaction().execute(async (trx) => {
    const previous = await lockGate(trx);
    const { rows } = await sql<{ now: Date }>`select now() as now`.execute(trx);
    const due = probeDue(
      { state: previous.state, nextProbeAt: previous.next_probe_at, probeUntil: previous.probe_until },
      rows[0]!.now.getTime(),
    );
    if (!due) return { row: previous, transition: undefined, claimed: false };
    const changed = await changeGate(
      trx,
      previous,
      {
        state: 'half_open',
        probe_owner: token,
        probe_until: sql<Date>`now() + ${`${probeLeaseMs} milliseconds`}::interval`,
      },
      { actor: 'worker', operator: null, reason: 'probing the treasury', error: null },
    );
    return { ...changed, claimed: true };
  });
}

const ownsProbe = (row: TreasuryGateRow, probeToken: string | undefined) =>
  probeToken !== undefined && row.state === 'half_open' && row.probe_owner === probeToken;

/** Counts a transient failure: a failed probe reopens the breaker for longer, a run of them opens it. */
export async function recordTransientFailure(
  db: Database,
  probeToken: string | undefined,
  error: string,
): Promise<GateChanged> {
  return db.transaction().execute(async (trx) => {
    const previous = await lockGate(trx);
    const failures = previous.consecutive_failures + 1;
    const base = { consecutive_failures: failures, last_error: error, last_error_at: sql<Date>`now()` };
    const event = { actor: 'worker' as const, operator: null, error };
    if (ownsProbe(previous, probeToken)) {
      const interval = nextProbeIntervalMs(previous.probe_interval_ms);
      return changeGate(
        trx,
        previous,
        {
          ...base,
          state: 'open',
          probe_owner: null,
          probe_until: null,
          probe_interval_ms: interval,
          next_probe_at: sql<Date>`now() + ${`${interval} milliseconds`}::interval`,
        },
        { ...event, reason: `probe failed; next in ${interval / 1000} s` },
      );
    }
    if (opensBreaker(previous.state, failures)) {
      return changeGate(
        trx,
        previous,
        {
          ...base,
          state: 'open',
          probe_interval_ms: PROBE_FIRST_MS,
          next_probe_at: sql<Date>`now() + ${`${PROBE_FIRST_MS} milliseconds`}::interval`,
        },
        { ...event, reason: `${failures} transient treasury failures in a row` },
      );
    }
    return changeGate(trx, previous, base, { ...event, reason: null });
  });
}

/** The treasury answered (paid or refused): the probe closes the breaker; otherwise the run is reset. */
export async function recordTreasuryAnswer(db: Database, probeToken: string | undefined): Promise<GateChanged> {
  return db.transaction().execute(async (trx) => {
    const previous = await lockGate(trx);
    if (ownsProbe(previous, probeToken)) {
      return changeGate(
        trx,
        previous,
        { state: 'closed', consecutive_failures: 0, ...CLEAR_PROBE },
        {
          actor: 'worker',
          operator: null,
          reason: 'probe answered',
          error: null,
        },
      );
    }
    if (previous.consecutive_failures === 0 || previous.state !== 'closed')
      return { row: previous, transition: undefined };
    return changeGate(
      trx,
      previous,
      { consecutive_failures: 0 },
      { actor: 'worker', operator: null, reason: null, error: null },
    );
  });
}

/** Hands back a probe that sent nothing; the row when it was still this token's, else undefined. */
export async function releaseProbe(db: Database, token: string): Promise<TreasuryGateRow | undefined> {
  return db
    .updateTable('treasury_gate')
    .set({ state: 'open', probe_owner: null, probe_until: null, next_probe_at: sql<Date>`now()` })
    .where('state', '=', 'half_open')
    .where('probe_owner', '=', token)
    .returningAll()
    .executeTakeFirst();
}
