import { type RawBuilder, sql } from 'kysely';
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

/**
 * Keyset paging over (timestamp, id), shared by every list that pages newest or oldest first.
 *
 * The cursor carries the timestamp as Postgres prints it, to the microsecond, and the comparison is
 * made in SQL against that text: a JavaScript Date keeps milliseconds only, and a cursor cut to the
 * millisecond skips rows of the same millisecond walking newest first and repeats them oldest first.
 */
export interface KeysetPosition {
  /** UTC, to the microsecond, as keysetTimestamp prints it. */
  at: string;
  id: string;
}

export type KeysetOrder = 'newest' | 'oldest';

/** The timestamp column as the cursor carries it; select it `as('cursor_at')` beside `id`. */
export const keysetTimestamp = (column: string): RawBuilder<string> =>
  sql<string>`to_char(${sql.ref(column)} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** Rows past `position` in a walk ordered by (`at`, `id`), both descending (newest) or both ascending. */
export const pastKeyset = (columns: { at: string; id: string }, position: KeysetPosition, order: KeysetOrder) =>
  sql<boolean>`(${sql.ref(columns.at)}, ${sql.ref(columns.id)}) ${sql.raw(order === 'newest' ? '<' : '>')} (${position.at}::timestamptz, ${position.id}::uuid)`;

/** A page of `limit` rows from a query that fetched `limit + 1`, and the cursor to the next page if any. */
export function keysetPage<Row extends { id: string; cursor_at: string }>(
  rows: Row[],
  limit: number,
): { page: Row[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { page, nextCursor: rows.length > limit && last ? encodeKeysetCursor(last.cursor_at, last.id) : null };
}

/** Opaque keyset cursor over (timestamp, id): the sort key of the last item of a page. */
export function encodeKeysetCursor(at: string, id: string): string {
  return Buffer.from(JSON.stringify([at, id])).toString('base64url');
}

/**
 * Decodes a cursor made by encodeKeysetCursor, accepting exactly what the keyset comparison's
 * `::timestamptz` and `::uuid` casts accept: a cursor that decodes but would fail in SQL is a 400.
 */
export function decodeKeysetCursor(cursor: string): KeysetPosition {
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
