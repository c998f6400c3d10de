/** The fake treasury's modes: how it answers `POST /transfers`, one rule per mode. */

import type { AcceptedTransfer } from './fake-treasury-books.ts';
import type { TransferRequestSeen } from './fake-treasury-request.ts';

/**
 * How the fake treasury answers `POST /transfers`:
 * * `succeed` — records the transfer and answers 201 `{ reference }`;
 * * `fail` — answers `status` (500) to the next `times` requests without recording anything, then
 *   succeeds (`times: Infinity` fails until the mode changes); `only` limits the failures to some keys;
 * * `refuse` — answers `status` (500) with `code` and `message` to every transfer `when` matches and
 *   that it has not accepted before; accepts the others (a key accepted earlier gets its reference back);
 * * `hang` — never answers (the caller's timeout fires); nothing is recorded;
 * * `drop-response` — records the transfer, then destroys the socket before answering, for the
 *   next `times` requests (default: until the mode changes);
 * * `slow` — records the transfer on arrival and answers after `delayMs`;
 * * `garble` — answers `status` with `body` as it is (not JSON, or JSON without a reference), as a
 *   proxy or a broken treasury would; nothing is recorded.
 * A new mode is one member here and one entry in `ANSWERS`. The reconciliation surface
 * (TreasuryBooks) answers in every mode except `hang`, where reads hang too.
 */
export type TreasuryMode =
  | { kind: 'succeed' }
  | { kind: 'fail'; times: number; only?: (idempotencyKey: string) => boolean; status?: number }
  | {
      kind: 'refuse';
      when: (transfer: TransferRequestSeen) => boolean;
      status?: number;
      code?: string;
      message?: (transfer: TransferRequestSeen) => string;
    }
  | { kind: 'hang' }
  | { kind: 'drop-response'; times?: number }
  | { kind: 'slow'; delayMs: number }
  | { kind: 'garble'; status: number; body: string };

/** What a mode's answer may do with one request. */
export interface Call {
  transfer: TransferRequestSeen;
  /** How many more times a counted mode (`fail`, `drop-response`) applies; the answer decrements it. */
  remaining: { value: number };
  /** Records the transfer (once per key) and returns it. */
  accept(): AcceptedTransfer;
  /** The transfer already accepted for this key, if any. */
  known(): AcceptedTransfer | undefined;
  pay(status?: number): void;
  refuse(status: number, code: string, message: string): void;
  /** Answers `status` with `body` verbatim. */
  answerRaw(status: number, body: string): void;
  /** Keeps the connection open without answering. */
  leaveOpen(): void;
  dropConnection(): void;
  later(ms: number, answer: () => void): void;
}

const ANSWERS: { [K in TreasuryMode['kind']]: (mode: Extract<TreasuryMode, { kind: K }>, call: Call) => void } = {
  succeed: (_mode, call) => call.pay(),
  fail(mode, call) {
    if (call.remaining.value > 0 && (mode.only?.(call.transfer.idempotencyKey) ?? true)) {
      call.remaining.value--;
      call.refuse(mode.status ?? 500, 'treasury_unavailable', 'the treasury is having a bad day');
    } else call.pay();
  },
  refuse(mode, call) {
    if (call.known() || !mode.when(call.transfer)) call.pay();
    else
      call.refuse(
        mode.status ?? 500,
        mode.code ?? 'refused',
        mode.message?.(call.transfer) ?? 'treasury refused the transfer',
      );
  },
  hang: (_mode, call) => call.leaveOpen(),
  'drop-response'(_mode, call) {
    if (call.remaining.value > 0) {
      call.remaining.value--;
      call.accept();
      call.dropConnection();
    } else call.pay();
  },
  slow(mode, call) {
    call.accept();
    call.later(mode.delayMs, () => call.pay());
  },
  garble: (mode, call) => call.answerRaw(mode.status, mode.body),
};

/** Answers one request as `mode` says. */
export function answerIn(mode: TreasuryMode, call: Call): void {
  (ANSWERS[mode.kind] as (m: TreasuryMode, c: Call) => void)(mode, call);
}

/** How many requests a counted mode (`fail`, `drop-response`) applies to when it is set. */
export function remainingOf(mode: TreasuryMode): number {
  if (mode.kind === 'fail') return mode.times;
  if (mode.kind === 'drop-response') return mode.times ?? Infinity;
  return 0;
}
