import { sql } from 'kysely';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import {
  createPurchase,
  getReferralPayoutStatus,
  ledgerGateway,
  processReferralPayouts,
  processReferralPayoutsBatch,
  referralEarnings,
  setReferralCodeActive,
} from '@referrals/core';
import { confirmedPurchase, readInvariants, seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });
const ctx = () => ({ db: t.db, gateway: ledgerGateway, minPayout: 1, logger });

describe('processReferralPayoutsBatch with the ledger gateway', () => {
  it('settles a mixed batch in one go, each purchase as processReferralPayouts would', async () => {
    const chain = await seedReferralChain(t.db);
    const a = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    const b = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    const done = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    await processReferralPayouts(ctx(), done.id, { actor: 'worker' });
    const inactive = await seedReferralChain(t.db);
    const c = await confirmedPurchase(t.db, inactive.buyer.id, inactive.content.id);
    await setReferralCodeActive(t.db, inactive.directCode.code, false);
    const { purchase: pending } = await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id });
    const unknown = '00000000-0000-4000-8000-000000000000';

    const results = await processReferralPayoutsBatch(
      ctx(),
      [a, b, done, c, pending, { id: unknown }].map((p) => ({ purchaseId: p.id })),
      { actor: 'worker' },
    );

    const byId = new Map(results.map((r) => [r.purchaseId, r]));
    const outcome = (id: string) => {
      const r = byId.get(id)!;
      if (r.status === 'rejected') throw new Error(`${id} failed: ${String(r.error)}`);
      return r;
    };
    expect([outcome(a.id).status, outcome(a.id).changed]).toEqual(['completed', true]);
    expect([outcome(b.id).status, outcome(b.id).paid.map((p) => p.amount)]).toEqual(['completed', [1000, 500]]);
    expect([outcome(done.id).status, outcome(done.id).changed]).toEqual(['completed', false]);
    expect([outcome(c.id).status, outcome(c.id).reason]).toEqual(['not_applicable', 'code_inactive']);
    expect(byId.get(pending.id)).toMatchObject({ status: 'rejected', error: { code: 'purchase_not_confirmed' } });
    expect(byId.get(unknown)).toMatchObject({ status: 'rejected', error: { code: 'not_found' } });

    // a, b and the earlier one: 1000 direct + 500 grand each.
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(3000);
    expect(await referralEarnings(t.db, chain.grand.id)).toBe(1500);
    expect((await getReferralPayoutStatus(t.db, a.id)).events.map((e) => [e.from, e.to, e.attempt])).toEqual([
      [null, 'queued', 0],
      ['queued', 'completed', 1],
    ]);
    const report = await readInvariants(t.db);
    expect(report.ledgerTotals).toEqual({ EUR: 0 });
    expect(report.doubleCredits).toBe(0);
  });

  it('falls back to one by one when the batch fails, so only the faulty purchase records a failure', async () => {
    const good = await seedReferralChain(t.db);
    const bad = await seedReferralChain(t.db);
    const ok1 = await confirmedPurchase(t.db, good.buyer.id, good.content.id);
    const broken = await confirmedPurchase(t.db, bad.buyer.id, bad.content.id);
    const ok2 = await confirmedPurchase(t.db, good.buyer.id, good.content.id);
    // The database refuses any credit to one referrer: a fault inside the batch transaction.
    await sql
      .raw(`create function refuse_credit() returns trigger language plpgsql as $$
        begin
          if new.user_id = '${bad.direct.id}' then raise exception 'earnings account of % is frozen', new.user_id; end if;
          return new;
        end $$;
        create trigger refuse_credit before insert on ledger_entries for each row execute function refuse_credit();`)
      .execute(t.db);
    try {
      const results = await processReferralPayoutsBatch(
        ctx(),
        [ok1, broken, ok2].map((p) => ({ purchaseId: p.id, finalAttempt: p.id === broken.id })),
        { actor: 'worker' },
      );
      const [r1, r2, r3] = results;
      expect(r1).toMatchObject({ status: 'completed', failure: null });
      expect(r3).toMatchObject({ status: 'completed', failure: null });
      expect(r2).toMatchObject({
        status: 'failed',
        failure: { message: `earnings account of ${bad.direct.id} is frozen` },
      });
      const status = await getReferralPayoutStatus(t.db, broken.id);
      expect([status.status, status.attempts, status.lastError]).toEqual([
        'failed',
        1,
        `earnings account of ${bad.direct.id} is frozen`,
      ]);
      expect(status.payouts).toEqual([]);
      expect(await referralEarnings(t.db, bad.grand.id)).toBe(0);
      expect(await referralEarnings(t.db, good.direct.id)).toBe(2000);
    } finally {
      await sql.raw('drop trigger refuse_credit on ledger_entries; drop function refuse_credit();').execute(t.db);
    }
    expect((await readInvariants(t.db)).ledgerTotals).toEqual({ EUR: 0 });
  });
});
