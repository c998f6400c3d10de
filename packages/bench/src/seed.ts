/**
 * Bulk data for benchmarks, written with set-based SQL (generate_series) because going through the
 * API for 100k rows would measure the seeding, not the product. The shapes are the ones core writes:
 * referral chains grand → direct → buyer, content with prices, and confirmed purchases with their
 * treasury distribution, outbox row and first event.
 */
import type pg from 'pg';
import { REFERRAL_PAYOUT_TOPIC } from '@referrals/core';

export interface Marketplace {
  buyerIds: string[];
  contentIds: string[];
}

export interface MarketplaceSize {
  grands: number;
  directs: number;
  buyers: number;
  contents: number;
}

async function inTransaction(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await work(client);
    await client.query('commit');
  } catch (error) {
    await client.query('rollback');
    throw error;
  } finally {
    client.release();
  }
}

export const DEFAULT_SIZE: MarketplaceSize = { grands: 10, directs: 100, buyers: 1000, contents: 20 };

/** Buyers each have a two-level chain; prices are 10.00–20.00 EUR so every level pays. */
export async function seedMarketplace(pool: pg.Pool, size: MarketplaceSize = DEFAULT_SIZE): Promise<Marketplace> {
  await inTransaction(pool, async (client) => {
    await client.query(`insert into users (handle) select 'grand_' || g from generate_series(1, $1::int) g`, [
      size.grands,
    ]);
    await client.query(`insert into referral_codes (code, owner_id)
      select 'GRAND' || substr(handle, 7), id from users where handle like 'grand\\_%'`);
    await client.query(`insert into users (handle) select 'direct_' || d from generate_series(1, $1::int) d`, [
      size.directs,
    ]);
    await client.query(
      `insert into user_referrals (user_id, code, direct_referrer_id, grand_referrer_id)
       select u.id, c.code, c.owner_id, null from users u
       join referral_codes c on c.code = 'GRAND' || (1 + substr(u.handle, 8)::int % $1::int)
       where u.handle like 'direct\\_%'`,
      [size.grands],
    );
    await client.query(`insert into referral_codes (code, owner_id)
      select 'DIRECT' || substr(handle, 8), id from users where handle like 'direct\\_%'`);
    await client.query(`insert into users (handle) select 'buyer_' || b from generate_series(1, $1::int) b`, [
      size.buyers,
    ]);
    await client.query(
      `insert into user_referrals (user_id, code, direct_referrer_id, grand_referrer_id)
       select u.id, c.code, c.owner_id, r.direct_referrer_id from users u
       join referral_codes c on c.code = 'DIRECT' || (1 + substr(u.handle, 7)::int % $1::int)
       join user_referrals r on r.user_id = c.owner_id
       where u.handle like 'buyer\\_%'`,
      [size.directs],
    );
    await client.query(`insert into users (handle) select 'creator_' || c from generate_series(1, $1::int) c`, [
      size.contents,
    ]);
    await client.query(`insert into content (creator_id, title, price, currency)
      select id, 'Bench content ' || handle, 1000 + 50 * substr(handle, 9)::int, 'EUR' from users where handle like 'creator\\_%'`);
  });
  const buyers = await pool.query<{ id: string }>(`select id from users where handle like 'buyer\\_%' order by id`);
  const contents = await pool.query<{ id: string }>('select id from content order by id');
  await pool.query('analyze');
  return { buyerIds: buyers.rows.map((r) => r.id), contentIds: contents.rows.map((r) => r.id) };
}

const PURCHASE_SOURCE = `
  from generate_series(1, $1::int) n
  join (select id, row_number() over (order by id) - 1 as i, count(*) over () as total from users where handle like 'buyer\\_%') b
    on b.i = n % b.total
  join (select id, price, currency, row_number() over (order by id) - 1 as i, count(*) over () as total from content) c
    on c.i = n % c.total`;

/**
 * Pending purchases plus `bench_pending`, a numbered list of them with their precomputed split, so
 * pgbench clients each take the next one with a sequence (no two clients confirm the same purchase).
 * Bench databases are throw-away clones, so the helper table never reaches a real schema.
 */
export async function seedPending(pool: pg.Pool, count: number, platformFeeBps: number): Promise<string[]> {
  await pool.query(`create table bench_pending (
    n bigint primary key, purchase_id uuid not null, creator_id uuid not null,
    price bigint not null, fee bigint not null, share bigint not null, currency char(3) not null)`);
  await pool.query('create sequence bench_pending_seq');
  await pool.query(
    `with created as (
       insert into purchases (buyer_id, content_id, price, currency)
       select b.id, c.id, c.price, c.currency ${PURCHASE_SOURCE}
       returning id, content_id, price, currency)
     insert into bench_pending (n, purchase_id, creator_id, price, fee, share, currency)
     select row_number() over (), p.id, c.creator_id, p.price, p.price * $2::int / 10000, p.price - p.price * $2::int / 10000, p.currency
     from created p join content c on c.id = p.content_id`,
    [count, platformFeeBps],
  );
  await pool.query('analyze');
  const { rows } = await pool.query<{ purchase_id: string }>('select purchase_id from bench_pending order by n');
  return rows.map((r) => r.purchase_id);
}

/**
 * Confirmed purchases waiting for their referral payout, exactly as confirm leaves them: status
 * `queued`, the treasury distribution in the ledger, an unpublished outbox row and the first event.
 */
export async function seedQueued(pool: pg.Pool, count: number, platformFeeBps: number): Promise<void> {
  await inTransaction(pool, async (client) => {
    await client.query(
      `create temporary table drain_purchases on commit drop as
       select gen_random_uuid() as id, b.id as buyer_id, c.id as content_id, c.price, c.currency ${PURCHASE_SOURCE}`,
      [count],
    );
    await client.query(
      `insert into purchases (id, buyer_id, content_id, price, currency, status, payment_reference, confirmed_at,
         platform_fee, referral_payout_status, referral_payout_queued_at)
       select id, buyer_id, content_id, price, currency, 'confirmed', 'pay_' || id, now(), price * $1::int / 10000, 'queued', now()
       from drain_purchases`,
      [platformFeeBps],
    );
    // One balanced movement per purchase (md5 of the id: a distinct transaction id per purchase).
    await client.query(
      `insert into ledger_entries (transaction_id, account, user_id, amount, currency, purchase_id)
       select md5(p.id::text)::uuid, v.account, v.user_id, v.amount, p.currency, p.id
       from drain_purchases p join content c on c.id = p.content_id
       cross join lateral (values
         ('buyer_payment_clearing', null::uuid, -p.price),
         ('creator_earnings', c.creator_id, p.price - p.price * $1::int / 10000),
         ('platform_treasury', null::uuid, p.price * $1::int / 10000)) v(account, user_id, amount)`,
      [platformFeeBps],
    );
    await client.query(
      `insert into outbox (topic, aggregate_id, payload)
       select $1, id, jsonb_build_object('purchaseId', id) from drain_purchases`,
      [REFERRAL_PAYOUT_TOPIC],
    );
    await client.query(
      `insert into referral_payout_events (purchase_id, from_status, to_status, actor, attempt)
       select id, null, 'queued', 'api', 0 from drain_purchases`,
    );
  });
  await pool.query('analyze');
}
