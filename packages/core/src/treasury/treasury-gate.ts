import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type UpdateObject } from 'kysely';
import type { Logger } from 'pino';
import type { Database, Tx } from '../db/database.ts';
import type { Actor, DB, TreasuryGateRow, TreasuryGateState } from '../db/types.ts';
import { DomainError } from '../errors.ts';
import type { TransferFailureKind } from './transfer-failure.ts';

/**
 * The treasury gate: the circuit breaker and the operator's pause, one row in Postgres shared by
 * every process, so two workers on two machines stop and start together and the API and CLI show
 * what they see.
 *
 * Breaker rule: BREAKER_FAILURES transient failures in a row, counted across all purchases and all
 * processes, open it (any answer from the treasury — a payment or a refusal — resets the count).
 * A run rather than an error rate over a window: it needs one counter instead of a sliding window,
 * it trips within a handful of calls when the treasury is down, and the intermittent failures an
 * error rate would catch are what per-purchase retries already absorb.
 * While open, one transfer at a time may probe the treasury, first PROBE_FIRST_MS after opening,
 * then at an interval that doubles after each failed probe up to PROBE_MAX_MS; the first probe the
 * treasury answers closes the breaker.
 * Pause is the same gate held by an operator: nothing (not even a probe) goes through until resumed.
 */
export const BREAKER_FAILURES = 5;
export const TREASURY_GATE_STATES: readonly TreasuryGateState[] = ['closed', 'open', 'half_open', 'paused'];
export const PROBE_FIRST_MS = 1_000;
export const PROBE_MAX_MS = 30_000;

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

function viewOf(row: TreasuryGateRow): TreasuryGateView {
  return {
    state: row.state,
    since: row.since,
    reason:
      row.state === 'paused'
        ? row.paused_reason
        : row.state === 'closed'
          ? null
          : `${BREAKER_FAILURES} transient treasury failures in a row`,
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

type GateChange = Omit<UpdateObject<DB, 'treasury_gate'>, 'id' | 'since'>;

/**
 * Applies a change to the locked gate row; a change of state also resets `since`, appends the event
 * and is reported once, by the process that made it.
 */
async function changeGate(
  trx: Tx,
  previous: TreasuryGateRow,
  change: GateChange,
  event: Omit<GateTransition, 'from' | 'to'>,
) {
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

const lockGate = (trx: Tx) => trx.selectFrom('treasury_gate').selectAll().forUpdate().executeTakeFirstOrThrow();

const CLEAR_PROBE = { probe_interval_ms: null, next_probe_at: null, probe_owner: null, probe_until: null } as const;

export interface OperatorAction {
  actor: Actor;
  /** Who asked: the admin token's name, or the CLI's user. */
  operator: string;
}

export const MAX_PAUSE_REASON = 500;

/**
 * Pauses payouts for every process until resumed: transfers already on the wire finish, no new one
 * starts, no purchase is charged an attempt. Pausing while paused is a conflict naming who holds it.
 */
export async function pausePayouts(
  db: Database,
  action: OperatorAction & { reason: string },
  logger?: Logger,
): Promise<TreasuryGateView> {
  const reason = action.reason.trim();
  if (reason === '' || reason.length > MAX_PAUSE_REASON) {
    throw new DomainError('validation_failed', `a pause needs a reason of 1 to ${MAX_PAUSE_REASON} characters`);
  }
  const { row, transition } = await db.transaction().execute(async (trx) => {
    const previous = await lockGate(trx);
    if (previous.state === 'paused') {
      throw new DomainError(
        'conflict',
        `payouts are already paused by ${previous.paused_by} since ${previous.since.toISOString()}: ${previous.paused_reason}`,
      );
    }
    return changeGate(
      trx,
      previous,
      { state: 'paused', paused_by: action.operator, paused_reason: reason, ...CLEAR_PROBE },
      {
        actor: action.actor,
        operator: action.operator,
        reason,
        error: null,
      },
    );
  });
  logger?.warn({ gate: transition, operator: action.operator, reason }, 'referral payouts paused');
  return viewOf(row);
}

/**
 * Resumes paused payouts: the gate closes with a fresh failure count, so a treasury still down trips
 * the breaker again within a few calls. Resuming what is not paused is a conflict.
 */
export async function resumePayouts(db: Database, action: OperatorAction, logger?: Logger): Promise<TreasuryGateView> {
  const { row, transition } = await db.transaction().execute(async (trx) => {
    const previous = await lockGate(trx);
    if (previous.state !== 'paused') {
      throw new DomainError(
        'conflict',
        `payouts are not paused (the treasury gate is ${previous.state.replace('_', '-')})`,
      );
    }
    return changeGate(
      trx,
      previous,
      { state: 'closed', paused_by: null, paused_reason: null, consecutive_failures: 0, ...CLEAR_PROBE },
      {
        actor: action.actor,
        operator: action.operator,
        reason: previous.paused_reason,
        error: null,
      },
    );
  });
  logger?.info({ gate: transition, operator: action.operator }, 'referral payouts resumed');
  return viewOf(row);
}

/**
 * A payout that did not start because the gate is shut: nothing was transferred and nothing was
 * recorded, so no attempt was spent. The worker holds the job until the gate lets it through; the
 * admin endpoint answers 409 and the CLI exits 1 instead of paying around the pause.
 */
export class TreasuryGateShut extends DomainError {
  override name = 'TreasuryGateShut';
  readonly view: TreasuryGateView;

  constructor(view: TreasuryGateView) {
    super(
      view.state === 'paused' ? 'payouts_paused' : 'treasury_circuit_open',
      view.state === 'paused'
        ? `referral payouts are paused by ${view.by} since ${view.since.toISOString()} (${view.reason}); nothing was transferred — resume them first`
        : `the treasury circuit breaker is ${view.state.replace('_', '-')} since ${view.since.toISOString()} after transient failures (last: ${view.lastError ?? 'unknown'}); nothing was transferred — payouts resume when a probe succeeds`,
    );
    this.view = view;
  }
}

export const isGateShut = (error: unknown): error is TreasuryGateShut => error instanceof TreasuryGateShut;

/** Whether a transfer may go to the treasury now. */
export type Admission =
  | { kind: 'pass' }
  /** The one half-open probe: report its result with this admission. */
  | { kind: 'probe'; token: string }
  | { kind: 'shut'; view: TreasuryGateView };

/** What the treasury did with an admitted transfer. */
export type TransferVerdict = 'paid' | TransferFailureKind;

export interface TreasuryGateOptions {
  db: Database;
  logger: Logger;
  /** How long a process trusts its copy of the gate before reading it again. */
  refreshMs?: number;
  /** How long a probe may run before another process may probe instead (its transfer timeout and then some). */
  probeLeaseMs: number;
  /** Called once per transition this process made (metrics). */
  onTransition?(transition: GateTransition): void;
}

const DEFAULT_REFRESH_MS = 250;

/**
 * One process's handle on the gate. Reads are cached for `refreshMs` and shared by every caller, so
 * hundreds of transfers in flight cost one query per interval; writes happen only on what changes
 * the gate (a failure, the first answer after failures, a probe), each under the row's lock.
 */
export class TreasuryGate {
  readonly #db: Database;
  readonly #log: Logger;
  readonly #refreshMs: number;
  readonly #probeLeaseMs: number;
  readonly #onTransition: ((transition: GateTransition) => void) | undefined;
  #view: TreasuryGateView | undefined;
  #readAt = 0;
  /** Database clock minus ours, so probe times compare against the clock that set them. */
  #skewMs = 0;
  #reading: Promise<TreasuryGateView> | undefined;
  #claiming: Promise<Admission> | undefined;

  constructor(options: TreasuryGateOptions) {
    this.#db = options.db;
    this.#log = options.logger.child({ component: 'treasury-gate' });
    this.#refreshMs = options.refreshMs ?? DEFAULT_REFRESH_MS;
    this.#probeLeaseMs = options.probeLeaseMs;
    this.#onTransition = options.onTransition;
  }

  /** The gate as this process last read it, read again when older than `refreshMs`. */
  async view(): Promise<TreasuryGateView> {
    if (this.#view && performance.now() - this.#readAt < this.#refreshMs) return this.#view;
    this.#reading ??= (async () => {
      try {
        const { rows } = await sql<
          TreasuryGateRow & { db_now: Date }
        >`select *, now() as db_now from treasury_gate`.execute(this.#db);
        const row = rows[0]!;
        this.#skewMs = row.db_now.getTime() - Date.now();
        return this.#remember(row);
      } finally {
        this.#reading = undefined;
      }
    })();
    return this.#reading;
  }

  /**
   * Whether an in-database payout may go now: only a pause stops it (the breaker guards the
   * treasury, which an in-database transfer never calls).
   */
  async admitInDatabase(): Promise<Admission> {
    const view = await this.view();
    return view.state === 'paused' ? { kind: 'shut', view } : { kind: 'pass' };
  }

  /**
   * Resolves once a payout held back by the gate may try again: the gate closed, a probe is due
   * (open), or the pause ended (in-database) — or when `signal` aborts or `timeoutMs` passes.
   * Reads the shared copy, so hundreds of held payouts cost one query per `refreshMs`.
   */
  async untilMayPass(
    gateway: 'in-database' | 'external',
    options: { signal?: AbortSignal; timeoutMs: number },
  ): Promise<void> {
    const deadline = performance.now() + options.timeoutMs;
    while (!options.signal?.aborted && performance.now() < deadline) {
      const view = await this.view();
      if (view.state === 'closed') return;
      if (gateway === 'in-database' && view.state !== 'paused') return;
      if (gateway === 'external' && this.#probeDue(view)) return;
      await sleep(Math.max(50, this.#refreshMs), undefined, { signal: options.signal }).catch(() => {});
    }
  }

  /** Whether a transfer may go now; at most one process at a time is handed the probe. */
  async admit(): Promise<Admission> {
    const view = await this.view();
    if (view.state === 'closed') return { kind: 'pass' };
    if (view.state === 'paused') return { kind: 'shut', view };
    if (!this.#probeDue(view)) return { kind: 'shut', view };
    // One claim at a time per process; the other callers are told the gate is shut meanwhile.
    if (this.#claiming) return { kind: 'shut', view };
    this.#claiming = this.#claimProbe().finally(() => {
      this.#claiming = undefined;
    });
    return this.#claiming;
  }

  /**
   * Records what the treasury did with an admitted transfer and returns the gate afterwards. A
   * transient failure counts towards opening the breaker (or, from the probe, keeps it open for
   * twice as long); a payment or a refusal shows the treasury is answering, which resets the count
   * and, from the probe, closes the breaker.
   */
  async report(admission: Admission, verdict: TransferVerdict, error?: string): Promise<TreasuryGateView> {
    if (verdict === 'transient') return this.#failed(admission, error ?? 'transfer failed');
    const view = await this.view();
    if (admission.kind !== 'probe' && view.consecutiveFailures === 0) return view;
    return this.#answered(admission);
  }

  /**
   * Hands back a probe that sent nothing (its purchase was settled or held elsewhere), so the next
   * payout may probe at once instead of after the probe's lease.
   */
  async release(admission: Admission): Promise<void> {
    if (admission.kind !== 'probe') return;
    const row = await this.#db
      .updateTable('treasury_gate')
      .set({ state: 'open', probe_owner: null, probe_until: null, next_probe_at: sql<Date>`now()` })
      .where('state', '=', 'half_open')
      .where('probe_owner', '=', admission.token)
      .returningAll()
      .executeTakeFirst();
    if (row) this.#remember(row);
  }

  /** Drops this process's copy, so the next read sees a change this process just made elsewhere (pause, resume). */
  forget(): void {
    this.#view = undefined;
  }

  /** Whether the gate was closed when last read (within `refreshMs`), without claiming a probe. */
  async isClosed(): Promise<boolean> {
    return (await this.view()).state === 'closed';
  }

  #probeDue(view: TreasuryGateView): boolean {
    const now = Date.now() + this.#skewMs;
    if (view.state === 'open') return view.nextProbeAt !== null && view.nextProbeAt.getTime() <= now;
    // half_open: the probe's owner may have died; its lease says when another may take over.
    return view.state === 'half_open' && this.#probeUntil !== undefined && this.#probeUntil.getTime() <= now;
  }

  #probeUntil: Date | undefined;

  #remember(row: TreasuryGateRow): TreasuryGateView {
    this.#view = viewOf(row);
    this.#probeUntil = row.probe_until ?? undefined;
    this.#readAt = performance.now();
    return this.#view;
  }

  async #claimProbe(): Promise<Admission> {
    const token = randomUUID();
    const result = await this.#db.transaction().execute(async (trx) => {
      const previous = await lockGate(trx);
      const { rows } = await sql<{ now: Date }>`select now() as now`.execute(trx);
      const now = rows[0]!.now.getTime();
      const due =
        (previous.state === 'open' && previous.next_probe_at !== null && previous.next_probe_at.getTime() <= now) ||
        (previous.state === 'half_open' && previous.probe_until !== null && previous.probe_until.getTime() <= now);
      if (!due) return { row: previous, transition: undefined, claimed: false };
      const changed = await changeGate(
        trx,
        previous,
        {
          state: 'half_open',
          probe_owner: token,
          probe_until: sql<Date>`now() + ${`${this.#probeLeaseMs} milliseconds`}::interval`,
        },
        { actor: 'worker', operator: null, reason: 'probing the treasury', error: null },
      );
      return { ...changed, claimed: true };
    });
    const view = this.#remember(result.row);
    this.#announce(result.transition);
    return result.claimed ? { kind: 'probe', token } : { kind: 'shut', view };
  }

  async #failed(admission: Admission, error: string): Promise<TreasuryGateView> {
    const result = await this.#db.transaction().execute(async (trx) => {
      const previous = await lockGate(trx);
      const failures = previous.consecutive_failures + 1;
      const base = { consecutive_failures: failures, last_error: error, last_error_at: sql<Date>`now()` };
      const event = { actor: 'worker' as const, operator: null, error };
      if (admission.kind === 'probe' && previous.state === 'half_open' && previous.probe_owner === admission.token) {
        const interval = Math.min(PROBE_MAX_MS, (previous.probe_interval_ms ?? PROBE_FIRST_MS) * 2);
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
      if (previous.state === 'closed' && failures >= BREAKER_FAILURES) {
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
    this.#announce(result.transition);
    return this.#remember(result.row);
  }

  async #answered(admission: Admission): Promise<TreasuryGateView> {
    const result = await this.#db.transaction().execute(async (trx) => {
      const previous = await lockGate(trx);
      if (admission.kind === 'probe' && previous.state === 'half_open' && previous.probe_owner === admission.token) {
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
    this.#announce(result.transition);
    return this.#remember(result.row);
  }

  #announce(transition: GateTransition | undefined): void {
    if (!transition) return;
    if (transition.to === 'open' && transition.from === 'closed') {
      this.#log.warn({ gate: transition }, 'treasury circuit breaker opened: transfers wait for a probe to succeed');
    } else if (transition.to === 'closed') {
      this.#log.info({ gate: transition }, 'treasury circuit breaker closed: transfers resume');
    } else {
      this.#log.debug({ gate: transition }, 'treasury circuit breaker probing');
    }
    this.#onTransition?.(transition);
  }
}
