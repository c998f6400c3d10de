import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { confirmPurchase, createPurchase, getReferralPayoutStatus } from '@referrals/core';
import { seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();

type Written = 'ledger_entries' | 'outbox' | 'referral_payout_events';

/** Rows each of confirm's inserts wrote for one purchase. */
async function writtenFor(purchaseId: string): Promise<Record<Written, number>> {
  const count = async (query: ReturnType<typeof sql<{ n: string }>>) => Number((await query.execute(t.db)).rows[0]!.n);
  return {
    ledger_entries: await count(sql`select count(*) as n from ledger_entries where purchase_id = ${purchaseId}`),
    outbox: await count(sql`select count(*) as n from outbox where aggregate_id = ${purchaseId}`),
    referral_payout_events: await count(sql`select count(*) as n from referral_payout_events where purchase_id = ${purchaseId}`),
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
  return async () => void (await sql.raw(`drop trigger refuse_for_test on ${table}; drop function refuse_for_test();`).execute(t.db));
}

describe('confirmPurchase is all or nothing', () => {
  it.each<Written>(['ledger_entries', 'outbox', 'referral_payout_events'])('a failed insert into %s commits nothing', async (table) => {
    const chain = await seedReferralChain(t.db);
    const { purchase } = await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id });
    const input = { purchaseId: purchase.id, paymentReference: 'pay_atomic' };

    const restore = await refuseInsert(table, purchase.id);
    try {
      await expect(confirmPurchase(t.db, input, { platformFeeBps: 3000 })).rejects.toThrow(`injected failure on insert into ${table}`);
    } finally {
      await restore();
    }

    const row = await t.db.selectFrom('purchases').selectAll().where('id', '=', purchase.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'pending', payment_reference: null, confirmed_at: null, platform_fee: null, referral_payout_status: null });
    expect(await writtenFor(purchase.id)).toEqual({ ledger_entries: 0, outbox: 0, referral_payout_events: 0 });

    // Nothing half-done stays behind: once the fault is gone the same confirm writes everything once.
    const { purchase: confirmed, replayed } = await confirmPurchase(t.db, input, { platformFeeBps: 3000 });
    expect([confirmed.status, confirmed.referralPayoutStatus, replayed]).toEqual(['confirmed', 'queued', false]);
    expect(await writtenFor(purchase.id)).toEqual({ ledger_entries: 3, outbox: 1, referral_payout_events: 1 });
    expect((await getReferralPayoutStatus(t.db, purchase.id)).events.map((e) => [e.from, e.to, e.actor])).toEqual([[null, 'queued', 'api']]);
  });
});
