import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneIdempotencyKeys } from '@referrals/core';
import { seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { rowCounts, service, testApp } from './support.ts';

const t = useTestDatabase();
let app: ReturnType<typeof testApp>;

beforeAll(async () => {
  app = testApp(t.db, t.url);
  await app.ready();
});
afterAll(() => app.close());

const create = (body: object, headers: Record<string, string | string[]>) =>
  app.inject({ method: 'POST', url: '/api/marketplace/purchases', headers: { ...service, ...headers }, payload: body });

describe('Idempotency-Key, as Stripe keeps it', () => {
  it('replays the first response, status and body, after the purchase has moved on', async () => {
    const chain = await seedReferralChain(t.db);
    const key = { 'idempotency-key': `order-${randomUUID()}` };
    const body = { buyerId: chain.buyer.id, contentId: chain.content.id };
    const first = await create(body, key);
    expect(first.statusCode).toBe(201);
    expect(first.json()).toMatchObject({ status: 'pending', paymentReference: null });

    const confirmed = await app.inject({
      method: 'POST',
      url: `/api/marketplace/purchase/${first.json().id}/confirm`,
      headers: service,
      payload: { paymentReference: 'pay_first_response' },
    });
    expect(confirmed.json()).toMatchObject({ status: 'confirmed' });

    const replay = await create(body, key);
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toBe(first.body);
  });

  it('compares ids case-insensitively: upper-case UUIDs are the same request', async () => {
    const chain = await seedReferralChain(t.db);
    const key = { 'idempotency-key': `order-${randomUUID()}` };
    const first = await create({ buyerId: chain.buyer.id, contentId: chain.content.id }, key);
    const before = await rowCounts(t.db);
    const shouted = await create(
      { buyerId: chain.buyer.id.toUpperCase(), contentId: chain.content.id.toUpperCase() },
      key,
    );
    expect(shouted.statusCode).toBe(201);
    expect(shouted.headers['idempotent-replayed']).toBe('true');
    expect(shouted.body).toBe(first.body);
    expect(await rowCounts(t.db)).toEqual(before);
  });

  it('refuses two Idempotency-Key headers, a key over 255 characters, and a key reused for another body', async () => {
    const chain = await seedReferralChain(t.db);
    const other = await seedReferralChain(t.db);
    const body = { buyerId: chain.buyer.id, contentId: chain.content.id };
    const key = `order-${randomUUID()}`;
    await create(body, { 'idempotency-key': key });
    const before = await rowCounts(t.db);

    const twice = await create(body, { 'idempotency-key': [key, 'another'] });
    expect(twice.statusCode).toBe(400);
    expect(twice.json().error).toEqual({
      code: 'validation_failed',
      message: 'send one Idempotency-Key header, not 2',
    });
    const long = await create(body, { 'idempotency-key': 'k'.repeat(256) });
    expect(long.statusCode).toBe(400);
    expect((await create(body, { 'idempotency-key': 'k'.repeat(255) })).statusCode).toBe(201);
    const reused = await create({ buyerId: chain.buyer.id, contentId: other.content.id }, { 'idempotency-key': key });
    expect(reused.statusCode).toBe(422);
    expect(reused.json().error.code).toBe('idempotency_key_reused');

    const after = await rowCounts(t.db);
    expect(after.purchases! - before.purchases!).toBe(1);
  });

  it('forgets keys older than IDEMPOTENCY_KEY_TTL_HOURS, after which the key creates a new purchase', async () => {
    const chain = await seedReferralChain(t.db);
    const body = { buyerId: chain.buyer.id, contentId: chain.content.id };
    const [stale, fresh] = [`stale-${randomUUID()}`, `fresh-${randomUUID()}`];
    const first = await create(body, { 'idempotency-key': stale });
    await create(body, { 'idempotency-key': fresh });
    await sql`update idempotency_keys set created_at = now() - interval '25 hours' where key = ${stale}`.execute(t.db);

    expect(await pruneIdempotencyKeys(t.db, 24)).toBe(1);
    const kept = await t.db.selectFrom('idempotency_keys').select('key').where('key', 'in', [stale, fresh]).execute();
    expect(kept.map((k) => k.key)).toEqual([fresh]);

    const again = await create(body, { 'idempotency-key': stale });
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBeUndefined();
    expect(again.json().id).not.toBe(first.json().id);
    expect((await create(body, { 'idempotency-key': fresh })).headers['idempotent-replayed']).toBe('true');
  });
});
