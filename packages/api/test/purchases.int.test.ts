import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seedReferralChain, uniqueHandle } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { BODY_LIMIT_BYTES } from '../src/app.ts';
import { admin, expectHealthyLedger, rowCounts, service, testApp } from './support.ts';

const t = useTestDatabase();
let app: ReturnType<typeof testApp>;

beforeAll(async () => {
  app = testApp(t.db, t.url);
  await app.ready();
});
afterAll(() => app.close());

afterEach(async () => {
  await expectHealthyLedger(t.db);
  // No payout runs in this file, so a purchase has an outbox row exactly when it is queued.
  const mismatched = await sql<{ n: number }>`
    select count(*) as n from purchases p
     where (p.referral_payout_status = 'queued') <> exists (select 1 from outbox o where o.aggregate_id = p.id)`.execute(
    t.db,
  );
  expect(Number(mismatched.rows[0]!.n)).toBe(0);
});

const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url, payload: payload as object, headers: { ...service, ...headers } });

async function createPurchaseOk(buyerId: string, contentId: string, headers: Record<string, string> = {}) {
  const response = await post('/api/marketplace/purchases', { buyerId, contentId }, headers);
  expect(response.statusCode).toBe(201);
  return response.json();
}

describe('sign-up, referral codes and content', () => {
  it('captures the referral chain at sign-up: direct = code owner, grand = owner’s referrer', async () => {
    const grand = (await post('/api/users', { handle: uniqueHandle('grand') })).json();
    expect(grand).toMatchObject({ referral: null });
    const grandCode = await post('/api/referral-codes', { ownerId: grand.id }, admin);
    expect(grandCode.statusCode).toBe(201);
    expect(grandCode.json()).toMatchObject({ ownerId: grand.id, directRateBps: 1000, grandRateBps: 500, active: true });
    expect(grandCode.json().code).toMatch(/^[A-Z2-9]{8}$/);

    const directResponse = await post('/api/users', {
      handle: uniqueHandle('direct'),
      referralCode: grandCode.json().code.toLowerCase(),
    });
    expect(directResponse.statusCode).toBe(201);
    const direct = directResponse.json();
    const code = await post(
      '/api/referral-codes',
      { ownerId: direct.id, code: 'Direct-Code_1', directRateBps: 2000, grandRateBps: 1000 },
      admin,
    );
    expect(code.statusCode).toBe(201);
    expect(code.json()).toMatchObject({ code: 'Direct-Code_1', directRateBps: 2000, grandRateBps: 1000 });

    const buyer = await post('/api/users', { handle: uniqueHandle('buyer'), referralCode: 'DIRECT-code_1' });
    expect(buyer.statusCode).toBe(201);
    expect(buyer.json()).toEqual({
      id: expect.any(String),
      handle: expect.any(String),
      referral: { code: 'Direct-Code_1', directReferrerId: direct.id, grandReferrerId: grand.id },
      createdAt: expect.any(String),
    });
  });

  it('refuses unknown codes (422), taken handles and codes (409), rates above the fee (400), unknown owners (404)', async () => {
    const owner = (await post('/api/users', { handle: uniqueHandle('owner') })).json();
    await post('/api/referral-codes', { ownerId: owner.id, code: 'TAKEN1' }, admin);
    const before = await rowCounts(t.db);

    const cases: [string, unknown, number, string][] = [
      ['/api/users', { handle: uniqueHandle(), referralCode: 'NO-SUCH-CODE' }, 422, 'unknown_referral_code'],
      ['/api/users', { handle: owner.handle.toUpperCase() }, 409, 'conflict'],
      ['/api/referral-codes', { ownerId: owner.id, code: 'taken1' }, 409, 'conflict'],
      ['/api/referral-codes', { ownerId: owner.id, directRateBps: 2500, grandRateBps: 501 }, 400, 'validation_failed'],
      ['/api/referral-codes', { ownerId: owner.id, directRateBps: 10_001 }, 400, 'validation_failed'],
      ['/api/referral-codes', { ownerId: '00000000-0000-4000-8000-000000000000' }, 404, 'not_found'],
      [
        '/api/content',
        { creatorId: '00000000-0000-4000-8000-000000000000', title: 'x', price: 1, currency: 'EUR' },
        404,
        'not_found',
      ],
    ];
    for (const [url, body, status, code] of cases) {
      const response = await post(url, body, url === '/api/referral-codes' ? admin : {});
      expect({ url, body, status: response.statusCode, code: response.json().error?.code }).toEqual({
        url,
        body,
        status,
        code,
      });
    }
    expect(await rowCounts(t.db)).toEqual(before);
  });

  it('publishes content with an integer price', async () => {
    const creator = (await post('/api/users', { handle: uniqueHandle('creator') })).json();
    const response = await post('/api/content', {
      creatorId: creator.id,
      title: 'Sourdough',
      price: 1_000_000_000_000,
      currency: 'JPY',
    });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({
      creatorId: creator.id,
      title: 'Sourdough',
      price: 1_000_000_000_000,
      currency: 'JPY',
    });
  });
});

describe('malformed input', () => {
  it('answers 4xx with the error shape and writes nothing', async () => {
    const chain = await seedReferralChain(t.db);
    const pending = await createPurchaseOk(chain.buyer.id, chain.content.id);
    const before = await rowCounts(t.db);
    const json = { 'content-type': 'application/json' };
    const contentBody = { creatorId: chain.creator.id, title: 'T', price: 100, currency: 'EUR' };
    const purchaseBody = { buyerId: chain.buyer.id, contentId: chain.content.id };

    const cases: {
      name: string;
      method?: 'GET' | 'POST';
      url: string;
      payload?: string;
      headers?: Record<string, string>;
      status: number;
      code: string;
    }[] = [
      {
        name: 'bad uuid in body',
        url: '/api/marketplace/purchases',
        payload: JSON.stringify({ ...purchaseBody, buyerId: 'not-a-uuid' }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'bad uuid in path (confirm)',
        url: '/api/marketplace/purchase/123/confirm',
        payload: JSON.stringify({ paymentReference: 'p' }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'bad uuid in path (get)',
        method: 'GET',
        url: '/api/marketplace/purchase/not-a-uuid',
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'missing field',
        url: '/api/marketplace/purchases',
        payload: JSON.stringify({ buyerId: chain.buyer.id }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'extra field',
        url: '/api/marketplace/purchases',
        payload: JSON.stringify({ ...purchaseBody, price: 1 }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'extra field on sign-up',
        url: '/api/users',
        payload: JSON.stringify({ handle: uniqueHandle(), admin: true }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'wrong type',
        url: '/api/users',
        payload: JSON.stringify({ handle: 42 }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'price as a string (no coercion)',
        url: '/api/content',
        payload: JSON.stringify({ ...contentBody, price: '100' }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'negative price',
        url: '/api/content',
        payload: JSON.stringify({ ...contentBody, price: -1 }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'fractional price',
        url: '/api/content',
        payload: JSON.stringify({ ...contentBody, price: 1.5 }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'huge price',
        url: '/api/content',
        payload: `{"creatorId":"${chain.creator.id}","title":"T","price":99999999999999999999999,"currency":"EUR"}`,
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'lowercase currency',
        url: '/api/content',
        payload: JSON.stringify({ ...contentBody, currency: 'eur' }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'four-letter currency',
        url: '/api/content',
        payload: JSON.stringify({ ...contentBody, currency: 'EURO' }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'NUL in title',
        url: '/api/content',
        payload: JSON.stringify({ ...contentBody, title: 'a\u0000b' }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'empty title',
        url: '/api/content',
        payload: JSON.stringify({ ...contentBody, title: '' }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'bad handle',
        url: '/api/users',
        payload: JSON.stringify({ handle: 'has space' }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'paymentReference as a number',
        url: `/api/marketplace/purchase/${pending.id}/confirm`,
        payload: JSON.stringify({ paymentReference: 7 }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'empty paymentReference',
        url: `/api/marketplace/purchase/${pending.id}/confirm`,
        payload: JSON.stringify({ paymentReference: '' }),
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'confirm without a body',
        url: `/api/marketplace/purchase/${pending.id}/confirm`,
        status: 400,
        code: 'validation_failed',
      },
      { name: 'body is an array', url: '/api/users', payload: '[]', status: 400, code: 'validation_failed' },
      { name: 'body is null', url: '/api/users', payload: 'null', status: 400, code: 'validation_failed' },
      { name: 'bad JSON', url: '/api/users', payload: '{"handle": "x"', status: 400, code: 'invalid_json' },
      { name: 'empty JSON body', url: '/api/users', payload: '', status: 400, code: 'invalid_json' },
      {
        name: 'prototype poisoning',
        url: '/api/users',
        payload: '{"handle":"x","__proto__":{"admin":true}}',
        status: 400,
        code: 'invalid_json',
      },
      {
        name: 'oversized body',
        url: '/api/users',
        payload: JSON.stringify({ handle: 'x'.repeat(BODY_LIMIT_BYTES) }),
        status: 413,
        code: 'payload_too_large',
      },
      {
        name: 'not JSON',
        url: '/api/users',
        payload: 'handle=x',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        status: 415,
        code: 'unsupported_media_type',
      },
      {
        name: 'idempotency key too long',
        url: '/api/marketplace/purchases',
        payload: JSON.stringify(purchaseBody),
        headers: { 'idempotency-key': 'k'.repeat(256) },
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'empty idempotency key',
        url: '/api/marketplace/purchases',
        payload: JSON.stringify(purchaseBody),
        headers: { 'idempotency-key': '' },
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'non-ASCII idempotency key',
        url: '/api/marketplace/purchases',
        payload: JSON.stringify(purchaseBody),
        headers: { 'idempotency-key': 'clé' },
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'unknown buyer',
        url: '/api/marketplace/purchases',
        payload: JSON.stringify({ ...purchaseBody, buyerId: '00000000-0000-4000-8000-000000000000' }),
        status: 404,
        code: 'not_found',
      },
      {
        name: 'unknown content',
        url: '/api/marketplace/purchases',
        payload: JSON.stringify({ ...purchaseBody, contentId: '00000000-0000-4000-8000-000000000000' }),
        status: 404,
        code: 'not_found',
      },
      {
        name: 'confirm unknown purchase',
        url: '/api/marketplace/purchase/00000000-0000-4000-8000-000000000000/confirm',
        payload: JSON.stringify({ paymentReference: 'p' }),
        status: 404,
        code: 'not_found',
      },
      {
        name: 'unknown purchase',
        method: 'GET',
        url: '/api/marketplace/purchase/00000000-0000-4000-8000-000000000000',
        status: 404,
        code: 'not_found',
      },
      { name: 'unknown route', method: 'GET', url: '/api/nothing-here', status: 404, code: 'not_found' },
    ];

    for (const c of cases) {
      const response = await app.inject({
        method: c.method ?? 'POST',
        url: c.url,
        ...(c.payload === undefined ? {} : { payload: c.payload }),
        headers:
          c.method === 'GET' || c.payload === undefined
            ? { ...service, ...c.headers }
            : { ...service, ...json, ...c.headers },
      });
      const body = response.json();
      expect({ name: c.name, status: response.statusCode, code: body.error?.code }).toEqual({
        name: c.name,
        status: c.status,
        code: c.code,
      });
      expect(body.error.message, c.name).toEqual(expect.any(String));
      expect(Object.keys(body), c.name).toEqual(['error']);
    }
    expect(await rowCounts(t.db)).toEqual(before);
  });
});

describe('create and confirm', () => {
  it('confirms with a referral chain: queued, treasury distribution, one outbox row', async () => {
    const chain = await seedReferralChain(t.db, { price: 10_001 });
    const created = await createPurchaseOk(chain.buyer.id, chain.content.id);
    expect(created).toMatchObject({
      status: 'pending',
      price: 10_001,
      currency: 'EUR',
      referralPayoutStatus: null,
      confirmedAt: null,
    });

    const response = await post(`/api/marketplace/purchase/${created.id}/confirm`, { paymentReference: 'pay_queued' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['idempotent-replayed']).toBeUndefined();
    const confirmed = response.json();
    expect(confirmed).toMatchObject({
      id: created.id,
      status: 'confirmed',
      paymentReference: 'pay_queued',
      referralPayoutStatus: 'queued',
      referralPayoutReason: null,
    });
    expect(Date.parse(confirmed.confirmedAt)).not.toBeNaN();

    const ledger = await t.db
      .selectFrom('ledger_entries')
      .select(['account', 'amount'])
      .where('purchase_id', '=', created.id)
      .orderBy('amount')
      .execute();
    expect(ledger).toEqual([
      { account: 'buyer_payment_clearing', amount: -10_001 },
      { account: 'platform_treasury', amount: 3000 },
      { account: 'creator_earnings', amount: 7001 },
    ]);
    const outbox = await t.db.selectFrom('outbox').selectAll().where('aggregate_id', '=', created.id).execute();
    expect(outbox).toHaveLength(1);
    expect(outbox[0]).toMatchObject({
      topic: 'referral_payout.requested',
      payload: { purchaseId: created.id },
      published_at: null,
    });

    const fetched = await app.inject({
      method: 'GET',
      url: `/api/marketplace/purchase/${created.id}`,
      headers: service,
    });
    expect(fetched.statusCode).toBe(200);
    expect(fetched.json()).toEqual(confirmed);
  });

  it('decides not_applicable without an outbox row: no referrer, free content', async () => {
    const chain = await seedReferralChain(t.db);
    const free = await seedReferralChain(t.db, { price: 0 });

    const noReferrer = await createPurchaseOk(chain.creator.id, chain.content.id);
    const r1 = await post(`/api/marketplace/purchase/${noReferrer.id}/confirm`, { paymentReference: 'pay_nr' });
    expect(r1.json()).toMatchObject({
      status: 'confirmed',
      referralPayoutStatus: 'not_applicable',
      referralPayoutReason: 'no_referrer',
    });

    const freePurchase = await createPurchaseOk(free.buyer.id, free.content.id);
    const r2 = await post(`/api/marketplace/purchase/${freePurchase.id}/confirm`, { paymentReference: 'pay_free' });
    expect(r2.json()).toMatchObject({
      status: 'confirmed',
      price: 0,
      referralPayoutStatus: 'not_applicable',
      referralPayoutReason: 'free_content',
    });

    const outbox = await t.db
      .selectFrom('outbox')
      .select('id')
      .where('aggregate_id', 'in', [noReferrer.id, freePurchase.id])
      .execute();
    expect(outbox).toEqual([]);
  });

  it('replays a confirmation with the same reference and refuses another reference with 409', async () => {
    const chain = await seedReferralChain(t.db);
    const created = await createPurchaseOk(chain.buyer.id, chain.content.id);
    const first = await post(`/api/marketplace/purchase/${created.id}/confirm`, { paymentReference: 'pay_once' });
    expect(first.statusCode).toBe(200);
    const before = await rowCounts(t.db);

    const again = await post(`/api/marketplace/purchase/${created.id}/confirm`, { paymentReference: 'pay_once' });
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());

    const other = await post(`/api/marketplace/purchase/${created.id}/confirm`, { paymentReference: 'pay_other' });
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe('conflict');
    expect(await rowCounts(t.db)).toEqual(before);
  });

  it('honours Idempotency-Key: same body replays, another body (any buyer) is 422', async () => {
    const chain = await seedReferralChain(t.db);
    const other = await seedReferralChain(t.db);
    const key = { 'idempotency-key': `order-${uniqueHandle()}` };

    const first = await post(
      '/api/marketplace/purchases',
      { buyerId: chain.buyer.id, contentId: chain.content.id },
      key,
    );
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const replay = await post(
      '/api/marketplace/purchases',
      { buyerId: chain.buyer.id, contentId: chain.content.id },
      key,
    );
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json()).toEqual(first.json());

    const before = await rowCounts(t.db);
    for (const body of [
      { buyerId: chain.buyer.id, contentId: other.content.id },
      { buyerId: other.buyer.id, contentId: chain.content.id },
    ]) {
      const reused = await post('/api/marketplace/purchases', body, key);
      expect(reused.statusCode).toBe(422);
      expect(reused.json().error.code).toBe('idempotency_key_reused');
    }
    expect(await rowCounts(t.db)).toEqual(before);
  });

  it('stays exactly-once under 20 concurrent duplicate creates and 20 concurrent duplicate confirms', async () => {
    const chain = await seedReferralChain(t.db);
    const key = { 'idempotency-key': `burst-${uniqueHandle()}` };
    const body = { buyerId: chain.buyer.id, contentId: chain.content.id };

    const creates = await Promise.all(Array.from({ length: 20 }, () => post('/api/marketplace/purchases', body, key)));
    expect(creates.map((r) => r.statusCode)).toEqual(Array(20).fill(201));
    const ids = new Set(creates.map((r) => r.json().id));
    expect(ids.size).toBe(1);
    expect(creates.filter((r) => r.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
    const [purchaseId] = [...ids];
    const purchases = await t.db.selectFrom('purchases').select('id').where('buyer_id', '=', chain.buyer.id).execute();
    expect(purchases).toHaveLength(1);

    const confirms = await Promise.all(
      Array.from({ length: 20 }, () =>
        post(`/api/marketplace/purchase/${purchaseId}/confirm`, { paymentReference: 'pay_burst' }),
      ),
    );
    expect(confirms.map((r) => r.statusCode)).toEqual(Array(20).fill(200));
    expect(new Set(confirms.map((r) => r.body)).size).toBe(1);
    expect(confirms.filter((r) => r.headers['idempotent-replayed'] === undefined)).toHaveLength(1);

    const count = async (
      table: 'ledger_entries' | 'outbox' | 'referral_payout_events',
      column: 'purchase_id' | 'aggregate_id',
    ) =>
      Number(
        (
          await sql<{
            n: number;
          }>`select count(*) as n from ${sql.table(table)} where ${sql.ref(column)} = ${purchaseId}`.execute(t.db)
        ).rows[0]!.n,
      );
    expect(await count('ledger_entries', 'purchase_id')).toBe(3);
    expect(await count('outbox', 'aggregate_id')).toBe(1);
    expect(await count('referral_payout_events', 'purchase_id')).toBe(1);
  });

  it('rolls the whole confirmation back when it fails after the purchase update, and reports a hidden 500', async () => {
    const chain = await seedReferralChain(t.db);
    const created = await createPurchaseOk(chain.buyer.id, chain.content.id);
    // The ledger insert comes after the purchase row is updated inside confirm's transaction.
    await sql`create function fail_ledger_for_test() returns trigger language plpgsql as $$
      begin
        if new.purchase_id = ${sql.lit(created.id)} then raise exception 'injected ledger failure'; end if;
        return new;
      end $$`.execute(t.db);
    await sql`create trigger fail_ledger_for_test before insert on ledger_entries
      for each row execute function fail_ledger_for_test()`.execute(t.db);
    const before = await rowCounts(t.db);
    try {
      const response = await post(`/api/marketplace/purchase/${created.id}/confirm`, {
        paymentReference: 'pay_doomed',
      });
      // Not bad input: the database refused an internal write, so this is the server's failure.
      expect(response.statusCode).toBe(500);
      expect(response.json().error.code).toBe('internal_error');
      expect(response.json().error.message).not.toContain('injected');
    } finally {
      await sql`drop trigger fail_ledger_for_test on ledger_entries`.execute(t.db);
      await sql`drop function fail_ledger_for_test()`.execute(t.db);
    }

    expect(await rowCounts(t.db)).toEqual(before);
    const row = await t.db.selectFrom('purchases').selectAll().where('id', '=', created.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      status: 'pending',
      referral_payout_status: null,
      payment_reference: null,
      confirmed_at: null,
    });
    expect(
      await t.db.selectFrom('ledger_entries').select('id').where('purchase_id', '=', created.id).execute(),
    ).toEqual([]);
    expect(await t.db.selectFrom('outbox').select('id').where('aggregate_id', '=', created.id).execute()).toEqual([]);

    // Nothing half-done stays behind: the same confirmation succeeds once the fault is gone.
    const retry = await post(`/api/marketplace/purchase/${created.id}/confirm`, { paymentReference: 'pay_doomed' });
    expect(retry.statusCode).toBe(200);
    expect(retry.json()).toMatchObject({ status: 'confirmed', referralPayoutStatus: 'queued' });
  });
});
