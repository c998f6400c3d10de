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
  | 'payout_failed';

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
