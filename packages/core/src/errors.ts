/**
 * Domain errors. Every failure a caller can act on has a code from this one union; the API maps
 * codes to HTTP statuses in one place and the CLI maps them to exit codes.
 */
export type ErrorCode =
  | 'validation_failed'
  | 'not_found'
  | 'conflict'
  | 'unauthorized'
  | 'unknown_referral_code'
  | 'idempotency_key_reused'
  | 'purchase_not_confirmed'
  /** An operator paused payouts: nothing is transferred until they are resumed. */
  | 'payouts_paused'
  /** The treasury's circuit breaker is open: nothing is transferred until a probe succeeds. */
  | 'treasury_circuit_open'
  | 'treasury_unavailable'
  /** A level was planned for another payout gateway than the one this process pays through. */
  | 'gateway_mismatch';

export class DomainError extends Error {
  override name = 'DomainError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

export const notFound = (what: string, id: string) => new DomainError('not_found', `${what} ${id} not found`);

/** SQLSTATE of a Postgres error, when `error` is one. */
export function sqlState(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return /^[0-9A-Z]{5}$/.test(error.code) ? error.code : undefined;
  }
  return undefined;
}

export const isUniqueViolation = (error: unknown) => sqlState(error) === '23505';
export const isForeignKeyViolation = (error: unknown) => sqlState(error) === '23503';

// Socket-level failures reaching or keeping a connection to Postgres.
const CONNECTION_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
// 57P01 admin_shutdown (fast/immediate restart, pg_terminate_backend), 57P02 crash_shutdown,
// 57P03 cannot_connect_now (starting up, shutting down, recovering), 53300 too_many_connections.
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
// node-postgres reports a socket that closed under it, or a client it already gave up on, by message only.
const CONNECTION_MESSAGES =
  /Connection terminated|not queryable|timeout exceeded when trying to connect|Connection ended unexpectedly/i;

/**
 * True when `error` says the database cannot be reached right now (down, restarting, connection
 * killed) rather than that the statement was wrong: the request or attempt may succeed when retried
 * later, and nothing about its input is at fault.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  // Errnos first: 'EPIPE' has the shape of a SQLSTATE.
  const code = 'code' in error ? error.code : undefined;
  if (typeof code === 'string' && CONNECTION_ERRNOS.has(code)) return true;
  const state = sqlState(error);
  if (state !== undefined) return state.startsWith('08') || UNAVAILABLE_STATES.has(state);
  // Connecting to a host name with several addresses fails with one error per address.
  if (error instanceof AggregateError) return error.errors.some(isDatabaseUnavailable);
  return error instanceof Error && CONNECTION_MESSAGES.test(error.message);
}
