/**
 * One process's handle on the treasury gate: whether a transfer may go now, what the treasury did
 * with it, and waiting until a payout the gate held back may try again.
 */

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.ts';
import type { TreasuryGateRow } from '../db/types.ts';
import { DomainError } from '../errors.ts';
import { claimProbe, recordTransientFailure, recordTreasuryAnswer, releaseProbe } from './breaker.ts';
import { probeDue } from './breaker-rule.ts';
import { type GateChanged, type GateTransition, type TreasuryGateView, viewOf } from './gate-record.ts';
import type { TransferFailureKind } from './transfer-failure.ts';

// The gate's view and transitions are part of this handle's API; callers may take them from here.
export type { GateTransition, TreasuryGateView } from './gate-record.ts';

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
 * One process's handle on the gate. Reads are cached for `refreshMs` and shared by every
 * caller, so hundreds of transfers in flight cost one query per interval; writes happen only on what
 * changes the gate (a failure, the first answer after failures, a probe), each a move in `breaker.ts`
 * under the row's lock. The operator's pause is in `pause-payouts.ts`.
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
    const probeToken = admission.kind === 'probe' ? admission.token : undefined;
    if (verdict === 'transient') {
      return this.#moved(await recordTransientFailure(this.#db, probeToken, error ?? 'transfer failed'));
    }
    const view = await this.view();
    if (probeToken === undefined && view.consecutiveFailures === 0) return view;
    return this.#moved(await recordTreasuryAnswer(this.#db, probeToken));
  }

  /**
   * Hands back a probe that sent nothing (its purchase was settled or held elsewhere), so the next
   * payout may probe at once instead of after the probe's lease.
   */
  async release(admission: Admission): Promise<void> {
    if (admission.kind !== 'probe') return;
    const row = await releaseProbe(this.#db, admission.token);
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
    return probeDue({ ...view, probeUntil: this.#probeUntil }, Date.now() + this.#skewMs);
  }

  #probeUntil: Date | null = null;

  #remember(row: TreasuryGateRow): TreasuryGateView {
    this.#view = viewOf(row);
    this.#probeUntil = row.probe_until;
    this.#readAt = performance.now();
    return this.#view;
  }

  async #claimProbe(): Promise<Admission> {
    const token = randomUUID();
    const result = await claimProbe(this.#db, token, this.#probeLeaseMs);
    const view = this.#remember(result.row);
    this.#announce(result.transition);
    return result.claimed ? { kind: 'probe', token } : { kind: 'shut', view };
  }

  /** Makes a move of the breaker known here: this copy, the log and the transition counter. */
  #moved(changed: GateChanged): TreasuryGateView {
    this.#announce(changed.transition);
    return this.#remember(changed.row);
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
