/** The window a reconciliation compares: its default, and its start as an operator writes it. */

import { DomainError } from '../errors.ts';

export const RECONCILE_DEFAULT_WINDOW_DAYS = 7;

export function defaultReconcileSince(now = new Date()): Date {
  return new Date(now.getTime() - RECONCILE_DEFAULT_WINDOW_DAYS * 86_400_000);
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The start of a reconciliation window as an operator writes it: a UTC date (`2026-11-20`) or an
 * ISO-8601 time with its offset. Anything else, a day that does not exist or a time in the future
 * is a validation error.
 */
export function parseReconcileSince(text: string, now = new Date()): Date {
  const value = text.trim();
  const date = DATE.test(value) ? new Date(`${value}T00:00:00Z`) : DATE_TIME.test(value) ? new Date(value) : undefined;
  if (
    date === undefined ||
    Number.isNaN(date.getTime()) ||
    (DATE.test(value) && date.toISOString().slice(0, 10) !== value)
  ) {
    throw new DomainError(
      'validation_failed',
      `since must be a date (2026-11-20) or an ISO-8601 time with offset (2026-11-20T08:00:00Z), got "${text}"`,
    );
  }
  if (date > now) throw new DomainError('validation_failed', `since ${date.toISOString()} is in the future`);
  return date;
}
