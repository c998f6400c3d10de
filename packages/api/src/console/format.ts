import { formatMoney } from '@referrals/core';

/** How the console's templates show values; every result is plain text, escaped by the template. */
export const format = {
  money: formatMoney,
  /** ISO timestamp → "2026-11-28 03:10:22 UTC"; "—" when absent. */
  time(iso: string | Date | null | undefined): string {
    if (iso === null || iso === undefined) return '—';
    const text = typeof iso === 'string' ? iso : iso.toISOString();
    return `${text.slice(0, 10)} ${text.slice(11, 19)} UTC`;
  },
  /** Seconds → "8 s", "3 min 12 s", "2 h 5 min", "1 d 3 h"; "—" when absent. */
  age(seconds: number | null | undefined): string {
    if (seconds === null || seconds === undefined) return '—';
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
  },
  /** Lag in seconds with a sensible precision: "0.42 s", "12 s", "3 min 4 s". */
  lag(seconds: number | null): string {
    if (seconds === null) return '—';
    return seconds < 10 ? `${seconds.toFixed(2)} s` : format.age(seconds);
  },
  /** 1000 bps → "10.00 %". */
  rate: (bps: number) => `${(bps / 100).toFixed(2)} %`,
  /** "not_applicable" → "not applicable". */
  words: (value: string | null | undefined) => (value ? value.replace(/_/g, ' ') : '—'),
  /** The short form of an id, for dense tables; the full id stays in the link and its title. */
  shortId: (id: string) => id.slice(0, 8),
};
