import { formatMoney } from '@referrals/core';

/** Text shown for a missing value, so columns never collapse. */
export const NONE = '-';

export interface Column<Row> {
  header: string;
  value: (row: Row) => string;
  align?: 'left' | 'right';
}

/** Aligned columns with a header row; the last column is not padded so lines carry no trailing blanks. */
export function table<Row>(rows: readonly Row[], columns: readonly Column<Row>[]): string {
  const cells = rows.map((row) => columns.map((c) => oneLine(c.value(row))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => {
        const last = i === values.length - 1;
        if (columns[i]!.align === 'right') return v.padStart(widths[i]!);
        return last ? v : v.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n');
}

/** "label   value" pairs with the values aligned. */
export function fields(pairs: readonly [string, string][]): string {
  const width = Math.max(...pairs.map(([label]) => label.length));
  return pairs.map(([label, value]) => `${label.padEnd(width)}  ${oneLine(value)}`.trimEnd()).join('\n');
}

export const money = (amount: number, currency: string) => formatMoney(amount, currency);

/** 1000 bps → "10.00%". */
export const rate = (bps: number) => `${(bps / 100).toFixed(2)}%`;

/** ISO timestamp → "2025-06-01 14:03:22 UTC": readable, unambiguous, sortable. */
export function timestamp(iso: string | null): string {
  if (iso === null) return NONE;
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

/** Seconds → "2h 5m", "3m 12s", "8s". */
export function duration(seconds: number | null): string {
  if (seconds === null) return NONE;
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

export const orNone = (value: string | number | null | undefined) =>
  value === null || value === undefined || value === '' ? NONE : String(value);

/** Status words as operators read them. */
export const statusLabel = (status: string | null) =>
  status === null ? 'pending (not confirmed)' : status.replace('_', ' ');

/** The status, and why it was decided when there is a reason: "not applicable (no referrer)". */
export const statusWithReason = (status: string | null, reason: string | null) =>
  statusLabel(status) + (reason ? ` (${reason.replace(/_/g, ' ')})` : '');

/** Long errors are cut in tables; --json and --status show them whole. */
export function truncate(text: string | null, max = 60): string {
  if (text === null) return NONE;
  const flat = oneLine(text);
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ');
}
