import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createPurchase, DomainError, getPurchase, pruneIdempotencyKeys } from '@referrals/core';
import { seedReferralChain, waitFor } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();

const purchasesWithKey = async (key: string) =>
  Number(
    (await sql<{ n: string }>`select count(*) as n from purchases where idempotency_key = ${key}`.execute(t.db))
      .rows[0]!.n,
  );

describe('createPurchase', () => {
  it('answers a pending purchase with every field taken from its row and the content snapshot', async () => {
    const chain = await seedReferralChain(t.db, { price: 4_321, currency: 'SEK' });
    const before = Date.now();
    const result = await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id });
    expect(result.status).toBe(201);
    expect(result.replayed).toBe(false);
    const row = await t.db
      .selectFrom('purchases')
      .selectAll()
      .where('id', '=', result.purchase.id)
      .executeTakeFirstOrThrow();
    expect(result.purchase).toEqual({
      id: row.id,
      buyerId: chain.buyer.id,
      contentId: chain.content.id,
      price: 4_321,
      currency: 'SEK',
      status: 'pending',
      paymentReference: null,
      referralPayoutStatus: null,
      referralPayoutReason: null,
      createdAt: row.created_at.toISOString(),
      confirmedAt: null,
    });
    expect(Date.parse(result.purchase.createdAt)).toBeGreaterThanOrEqual(before - 60_000);
    expect([row.idempotency_key, row.idempotency_fingerprint]).toEqual([null, null]);
    expect(await getPurchase(t.db, row.id)).toEqual(result.purchase);
  });

  it('names the missing buyer or content, and passes any other database error through', async () => {
    const chain = await seedReferralChain(t.db);
    const ghost = randomUUID();
    const noBuyer = createPurchase(t.db, { buyerId: ghost, contentId: chain.content.id });
    await expect(noBuyer).rejects.toBeInstanceOf(DomainError);
    await expect(noBuyer).rejects.toMatchObject({ code: 'not_found', message: `buyer ${ghost} not found` });
    const noContent = createPurchase(t.db, { buyerId: chain.buyer.id, contentId: ghost });
    await expect(noContent).rejects.toMatchObject({ code: 'not_found', message: `content ${ghost} not found` });
    // Not a foreign key violation: the error the database raised, not a not_found.
    const badId = createPurchase(t.db, { buyerId: 'not-a-uuid', contentId: chain.content.id });
    await expect(badId).rejects.not.toBeInstanceOf(DomainError);
    await expect(badId).rejects.toMatchObject({ code: '22P02' });
    // The same misses under an idempotency key store nothing under the key.
    await expect(
      createPurchase(t.db, { buyerId: ghost, contentId: chain.content.id, idempotencyKey: 'order-ghost' }),
    ).rejects.toMatchObject({ code: 'not_found' });
    expect(await t.db.selectFrom('idempotency_keys').selectAll().where('key', '=', 'order-ghost').execute()).toEqual(
      [],
    );
    expect(await purchasesWithKey('order-ghost')).toBe(0);
  });

  it('under an idempotency key answers the first response again, even after the purchase moved on', async () => {
    const chain = await seedReferralChain(t.db);
    const input = { buyerId: chain.buyer.id, contentId: chain.content.id, idempotencyKey: 'order-1' };
    const first = await createPurchase(t.db, input);
    expect([first.status, first.replayed]).toEqual([201, false]);
    const stored = await t.db
      .selectFrom('idempotency_keys')
      .selectAll()
      .where('key', '=', 'order-1')
      .executeTakeFirstOrThrow();
    expect(stored).toMatchObject({ response_status: 201, response_body: first.purchase });
    const row = await t.db
      .selectFrom('purchases')
      .selectAll()
      .where('id', '=', first.purchase.id)
      .executeTakeFirstOrThrow();
    expect([row.idempotency_key, row.idempotency_fingerprint]).toEqual(['order-1', stored.fingerprint]);

    await sql`update purchases set status = 'confirmed', payment_reference = 'pay_x', confirmed_at = now(),
                platform_fee = 0, referral_payout_status = 'not_applicable', referral_payout_reason = 'no_referrer'
               where id = ${first.purchase.id}`.execute(t.db);
    const again = await createPurchase(t.db, input);
    expect(again).toEqual({ status: 201, purchase: first.purchase, replayed: true });
    // Ids compare as Postgres compares uuids: the same request in capitals is the same request.
    const shouted = await createPurchase(t.db, {
      ...input,
      buyerId: input.buyerId.toUpperCase(),
      contentId: input.contentId.toUpperCase(),
    });
    expect(shouted).toEqual({ status: 201, purchase: first.purchase, replayed: true });
    expect(await purchasesWithKey('order-1')).toBe(1);

    // Another request under the same key, whoever sends it, is refused and writes nothing.
    const other = await seedReferralChain(t.db);
    for (const reuse of [
      { ...input, contentId: other.content.id },
      { ...input, buyerId: other.buyer.id },
    ]) {
      await expect(createPurchase(t.db, reuse)).rejects.toMatchObject({ code: 'idempotency_key_reused' });
    }
    expect(await purchasesWithKey('order-1')).toBe(1);

    // Another key is another purchase.
    const second = await createPurchase(t.db, { ...input, idempotencyKey: 'order-2' });
    expect(second.replayed).toBe(false);
    expect(second.purchase.id).not.toBe(first.purchase.id);
  });

  it('when another request commits the same key first, answers its response and keeps no purchase of its own', async () => {
    const chain = await seedReferralChain(t.db);
    const input = { buyerId: chain.buyer.id, contentId: chain.content.id, idempotencyKey: 'order-race' };
    // The fingerprint of this request, as an earlier purchase under another key stored it.
    const probe = await createPurchase(t.db, { ...input, idempotencyKey: 'order-probe' });
    const { fingerprint } = await t.db
      .selectFrom('idempotency_keys')
      .select('fingerprint')
      .where('key', '=', 'order-probe')
      .executeTakeFirstOrThrow();
    const winnerBody = { ...probe.purchase, id: randomUUID() };

    // The "other request": its key row is written but not committed while this one creates.
    const other = await t.db.connection().execute(async (conn) => {
      await sql`begin`.execute(conn);
      await sql`insert into idempotency_keys (key, fingerprint, response_status, response_body)
                values ('order-race', ${fingerprint}, 201, ${JSON.stringify(winnerBody)}::jsonb)`.execute(conn);
      const creating = createPurchase(t.db, input);
      const settled = creating.then(
        () => undefined,
        () => undefined,
      );
      // Waits until the create is blocked on the key the other request holds.
      await waitFor(
        async () =>
          Number(
            (
              await sql<{ n: string }>`select count(*) as n from pg_stat_activity
                 where wait_event_type = 'Lock' and datname = current_database()`.execute(t.db)
            ).rows[0]!.n,
          ) > 0,
        { what: 'the create to wait for the uncommitted key' },
      );
      await sql`commit`.execute(conn);
      await settled;
      return creating;
    });
    expect(other).toEqual({ status: 201, purchase: winnerBody, replayed: true });
    expect(await purchasesWithKey('order-race')).toBe(0);
  });

  it('pruneIdempotencyKeys forgets keys past the TTL in batches, oldest first, and keeps the rest', async () => {
    const chain = await seedReferralChain(t.db);
    const keys = ['old-1', 'old-2', 'old-3', 'recent'];
    for (const idempotencyKey of keys)
      await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id, idempotencyKey });
    await sql`update idempotency_keys set created_at = now() - interval '25 hours' where key like 'old-%'`.execute(
      t.db,
    );
    await sql`update idempotency_keys set created_at = now() - interval '23 hours' where key = 'recent'`.execute(t.db);

    expect(await pruneIdempotencyKeys(t.db, 24, 2)).toBe(3);
    const left = await t.db.selectFrom('idempotency_keys').select('key').where('key', 'in', keys).execute();
    expect(left.map((r) => r.key)).toEqual(['recent']);
    expect(await pruneIdempotencyKeys(t.db, 24, 2)).toBe(0);
    // A forgotten key may create a new purchase.
    const reused = await createPurchase(t.db, {
      buyerId: chain.buyer.id,
      contentId: chain.content.id,
      idempotencyKey: 'old-1',
    });
    expect(reused.replayed).toBe(false);
    expect(await purchasesWithKey('old-1')).toBe(2);
  });
});
