/**
 * What a failed transfer means, decided here and nowhere else.
 *
 * * transient — the treasury may accept the same transfer later: a timeout, a connection that could
 *   not be made or broke, a 5xx, a 429 (or 408) rate/timeout answer, or an answer we could not read.
 *   Retried with the same idempotency key, and counted by the circuit breaker.
 * * permanent — the treasury answered and refused this transfer (any other 4xx, e.g. 422
 *   "beneficiary account closed"): retrying cannot change the answer, so the level fails at once.
 */
export type TransferFailureKind = 'transient' | 'permanent';

export function classifyTreasuryStatus(status: number): TransferFailureKind {
  if (status === 408 || status === 429) return 'transient';
  if (status >= 400 && status < 500) return 'permanent';
  return 'transient';
}

/** A transfer the treasury did not confirm; `status` is the treasury's HTTP status when it answered. */
export class TransferError extends Error {
  override name = 'TransferError';
  readonly kind: TransferFailureKind;
  readonly status: number | undefined;

  constructor(message: string, options: { status?: number; kind?: TransferFailureKind; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.status = options.status;
    this.kind = options.kind ?? (options.status === undefined ? 'transient' : classifyTreasuryStatus(options.status));
  }
}

/**
 * The kind of a gateway failure, or undefined when the error did not come from the treasury at all
 * (a database error, a bug): those neither fail a level permanently nor trip the breaker.
 */
export function transferFailureKind(error: unknown): TransferFailureKind | undefined {
  return error instanceof TransferError ? error.kind : undefined;
}
