import { sql } from 'kysely';
import type { Database } from '../db/database.ts';

export interface LagBucket {
  /** Start of the bucket (ISO). */
  start: string;
  /** Purchases completed in the bucket. */
  completed: number;
  /** Median and maximum confirm → completed lag of those purchases, in seconds; null when none. */
  p50Seconds: number | null;
  maxSeconds: number | null;
}

/**
 * Confirm → completed lag of the purchases completed in the last `windowMinutes`, in buckets of
 * `bucketMinutes`, oldest first; every bucket is present, empty ones with nulls.
 */
export async function payoutLagHistory(
  db: Database,
  options: { windowMinutes: number; bucketMinutes: number } = { windowMinutes: 60, bucketMinutes: 5 },
): Promise<LagBucket[]> {
  const { windowMinutes, bucketMinutes } = options;
  const buckets = Math.ceil(windowMinutes / bucketMinutes);
  const { rows } = await sql<{ start: Date; completed: number | null; p50: number | null; max: number | null }>`
    with window_start as (
      select date_bin(${`${bucketMinutes} minutes`}::interval, now() - ${`${windowMinutes} minutes`}::interval, 'epoch') as at
    ), lag as (
      select date_bin(${`${bucketMinutes} minutes`}::interval, p.referral_payout_completed_at, 'epoch') as bucket,
             extract(epoch from p.referral_payout_completed_at - p.confirmed_at)::float8 as seconds
        from purchases p, window_start w
       where p.referral_payout_status = 'completed'
         and p.referral_payout_completed_at >= w.at
    )
    select s.start, count(lag.seconds)::int as completed,
           percentile_cont(0.5) within group (order by lag.seconds) as p50,
           max(lag.seconds) as max
      from window_start w
      cross join generate_series(w.at, w.at + ${`${buckets * bucketMinutes} minutes`}::interval, ${`${bucketMinutes} minutes`}::interval) as s(start)
      left join lag on lag.bucket = s.start
     group by s.start
     order by s.start`.execute(db);
  return rows.map((r) => ({
    start: r.start.toISOString(),
    completed: Number(r.completed ?? 0),
    p50Seconds: r.p50 === null ? null : Number(r.p50),
    maxSeconds: r.max === null ? null : Number(r.max),
  }));
}

/** How long the oldest purchase whose referral payout is still queued has waited, in seconds; null when none is. */
export async function oldestQueuedAgeSeconds(db: Database): Promise<number | null> {
  const { rows } = await sql<{ age: number | null }>`
    select extract(epoch from now() - min(referral_payout_queued_at))::float8 as age
      from purchases where referral_payout_status = 'queued'`.execute(db);
  return rows[0]?.age == null ? null : Number(rows[0].age);
}
