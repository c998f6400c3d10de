import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { confirmPurchase, createPurchase, getPurchase, getReferralPayoutStatus, OUTBOX_CHANNEL } from '@referrals/core';
import { seedReferralChain, waitFor } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();

type Written = 'ledger_entries' | 'outbox' | 'referral_payout_events';

/** Rows each of confirm's inserts wrote for one purchase. */
async function writtenFor(purchaseId: string): Promise<Record<Written, number>> {
  const count = async (query: ReturnType<typeof sql<{ n: string }>>) => Number((await query.execute(t.db)).rows[0]!.n);
  return {
    ledger_entries: await count(sql`select count(*) as n from ledger_entries where purchase_id = ${purchaseId}`),
    outbox: await count(sql`select count(*) as n from outbox where aggregate_id = ${purchaseId}`),
    referral_payout_events: await count(
      sql`select count(*) as n from referral_payout_events where purchase_id = ${purchaseId}`,
    ),
  };
}

/** Makes the database refuse one insert into `table` for this purchase: a fault inside confirm's statement. */
async function refuseInsert(table: Written, purchaseId: string): Promise<() => Promise<void>> {
  const column = table === 'outbox' ? 'aggregate_id' : 'purchase_id';
  await sql
    .raw(`create function refuse_for_test() returns trigger language plpgsql as $$
      begin
        if new.${column} = '${purchaseId}' then raise exception 'injected failure on insert into ${table}'; end if;
        return new;
      end $$;
      create trigger refuse_for_test before insert on ${table} for each row execute function refuse_for_test();`)
    .execute(t.db);
  return async () =>
    void (await sql.raw(`drop trigger refuse_for_test on ${table}; drop function refuse_for_test();`).execute(t.db));
}

describe('confirmPurchase is all or nothing', () => {
  it.each<Written>(['ledger_entries', 'outbox', 'referral_payout_events'])(
    'a failed insert into %s commits nothing',
    async (table) => {
      const chain = await seedReferralChain(t.db);
      const { purchase } = await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id });
      const input = { purchaseId: purchase.id, paymentReference: 'pay_atomic' };

      const restore = await refuseInsert(table, purchase.id);
      try {
        await expect(confirmPurchase(t.db, input, { platformFeeBps: 3000 })).rejects.toThrow(
          `injected failure on insert into ${table}`,
        );
      } finally {
        await restore();
      }

      const row = await t.db
        .selectFrom('purchases')
        .selectAll()
        .where('id', '=', purchase.id)
        .executeTakeFirstOrThrow();
      expect(row).toMatchObject({
        status: 'pending',
        payment_reference: null,
        confirmed_at: null,
        platform_fee: null,
        referral_payout_status: null,
      });
      expect(await writtenFor(purchase.id)).toEqual({ ledger_entries: 0, outbox: 0, referral_payout_events: 0 });

      // Nothing half-done stays behind: once the fault is gone the same confirm writes everything once.
      const { purchase: confirmed, replayed } = await confirmPurchase(t.db, input, { platformFeeBps: 3000 });
      expect([confirmed.status, confirmed.referralPayoutStatus, replayed]).toEqual(['confirmed', 'queued', false]);
      expect(await writtenFor(purchase.id)).toEqual({ ledger_entries: 3, outbox: 1, referral_payout_events: 1 });
      expect((await getReferralPayoutStatus(t.db, purchase.id)).events.map((e) => [e.from, e.to, e.actor])).toEqual([
        [null, 'queued', 'api'],
      ]);
    },
  );
});

describe('confirmPurchase', () => {
  it('answers the confirmed purchase, wakes the relay after commit, and replays', async () => {
    const chain = await seedReferralChain(t.db);
    const { purchase, replayed: createReplayed } = await createPurchase(t.db, {
      buyerId: chain.buyer.id,
      contentId: chain.content.id,
      idempotencyKey: 'order-notify',
    });
    expect(createReplayed).toBe(false);
    expect(
      (
        await createPurchase(t.db, {
          buyerId: chain.buyer.id,
          contentId: chain.content.id,
          idempotencyKey: 'order-notify',
        })
      ).replayed,
    ).toBe(true);

    const listener = new pg.Client({ connectionString: t.url });
    await listener.connect();
    const wakeUps: string[] = [];
    listener.on('notification', (n) => wakeUps.push(n.channel));
    await listener.query(`listen ${OUTBOX_CHANNEL}`);
    try {
      const first = await confirmPurchase(
        t.db,
        { purchaseId: purchase.id, paymentReference: 'pay_notify' },
        { platformFeeBps: 3000 },
      );
      expect(first.replayed).toBe(false);
      expect(first.purchase.confirmedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
      await waitFor(() => wakeUps.length > 0, { what: 'the outbox wake-up' });
      expect(wakeUps).toEqual([OUTBOX_CHANNEL]);
    } finally {
      await listener.end();
    }
    const again = await confirmPurchase(
      t.db,
      { purchaseId: purchase.id, paymentReference: 'pay_notify' },
      { platformFeeBps: 3000 },
    );
    expect([again.replayed, again.purchase.confirmedAt]).toEqual([true, expect.any(String)]);
  });

  it('refuses a platform fee outside 0..10000 bps before writing anything', async () => {
    const chain = await seedReferralChain(t.db);
    const { purchase } = await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id });
    for (const platformFeeBps of [-1, 10_001, 1.5]) {
      await expect(
        confirmPurchase(t.db, { purchaseId: purchase.id, paymentReference: 'pay_fee' }, { platformFeeBps }),
      ).rejects.toThrow(RangeError);
    }
    expect(await writtenFor(purchase.id)).toEqual({ ledger_entries: 0, outbox: 0, referral_payout_events: 0 });
    for (const platformFeeBps of [0, 10_000]) {
      const { purchase: other } = await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id });
      await expect(
        confirmPurchase(t.db, { purchaseId: other.id, paymentReference: 'pay_fee' }, { platformFeeBps }),
      ).resolves.toMatchObject({ replayed: false });
    }
  });

  it('refuses an unknown purchase and a second confirm with another payment reference', async () => {
    const ghost = randomUUID();
    await expect(
      confirmPurchase(t.db, { purchaseId: ghost, paymentReference: 'pay_ghost' }, { platformFeeBps: 3000 }),
    ).rejects.toMatchObject({ code: 'not_found', message: `purchase ${ghost} not found` });
    const chain = await seedReferralChain(t.db);
    const { purchase } = await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id });
    await confirmPurchase(t.db, { purchaseId: purchase.id, paymentReference: 'pay_first' }, { platformFeeBps: 3000 });
    await expect(
      confirmPurchase(t.db, { purchaseId: purchase.id, paymentReference: 'pay_other' }, { platformFeeBps: 3000 }),
    ).rejects.toMatchObject({ code: 'conflict' });
    expect(await getPurchase(t.db, purchase.id)).toMatchObject({ paymentReference: 'pay_first' });
    await expect(getPurchase(t.db, ghost)).rejects.toMatchObject({ code: 'not_found' });
  });
});
