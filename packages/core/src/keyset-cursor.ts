import { DomainError } from './errors.ts';

/** What Postgres's uuid input takes in its canonical form; anything else would fail the cast. */
// Spelled without the `i` flag so that its `source` means the same in a JSON schema `pattern`.
export const UUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

const UTC_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?Z$/;

/**
 * A UTC timestamp as toISOString() or Postgres's to_char print it, that names a real instant
 * `::timestamptz` accepts: 2026-02-31, hour 24 and year 0 match the shape and fail the cast.
 */
export function isUtcTimestamp(text: unknown): text is string {
  if (typeof text !== 'string') return false;
  const parts = UTC_TIMESTAMP.exec(text);
  if (!parts) return false;
  const [year, month, day, hour, minute, second] = parts.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (year < 1) return false;
  const instant = new Date(0);
  instant.setUTCFullYear(year, month - 1, day);
  instant.setUTCHours(hour, minute, second);
  return (
    instant.getUTCFullYear() === year &&
    instant.getUTCMonth() === month - 1 &&
    instant.getUTCDate() === day &&
    instant.getUTCHours() === hour &&
    instant.getUTCMinutes() === minute &&
    instant.getUTCSeconds() === second
  );
}

/** Opaque keyset cursor over (timestamp, id): the sort key of the last item of a page. */
export function encodeKeysetCursor(at: string, id: string): string {
  return Buffer.from(JSON.stringify([at, id])).toString('base64url');
}

/**
 * Decodes a cursor made by encodeKeysetCursor, accepting exactly what the keyset comparison's
 * `::timestamptz` and `::uuid` casts accept: a cursor that decodes but would fail in SQL is a 400.
 */
export function decodeKeysetCursor(cursor: string): { at: string; id: string } {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  if (
    Array.isArray(value) &&
    value.length === 2 &&
    isUtcTimestamp(value[0]) &&
    typeof value[1] === 'string' &&
    UUID_PATTERN.test(value[1])
  ) {
    return { at: value[0], id: value[1] };
  }
  throw new DomainError('validation_failed', 'cursor is not valid: pass the nextCursor of a previous page');
}
