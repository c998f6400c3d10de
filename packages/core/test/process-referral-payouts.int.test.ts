import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { sql } from 'kysely';
import {
  getReferralPayoutStatus,
  ledgerGateway,
  pausePayouts,
  processReferralPayouts,
  processReferralPayoutsBatch,
  referralEarnings,
  resumePayouts,
  TreasuryGate,
} from '@referrals/core';
import { confirmedPurchase, readInvariants, seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });

describe('processReferralPayouts with the ledger gateway', () => {
  it('pays direct and grand once, however often it is called', async () => {
    const chain = await seedReferralChain(t.db, { price: 10_001 });
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    expect(purchase.referralPayoutStatus).toBe('queued');
    const ctx = { db: t.db, gateway: ledgerGateway, minPayout: 1, logger };

    const results = await Promise.all(
      [1, 2, 3].map(() => processReferralPayouts(ctx, purchase.id, { actor: 'worker' })),
    );
    expect(results.filter((r) => r.changed)).toHaveLength(1);
    expect(results.every((r) => r.status === 'completed')).toBe(true);

    expect(await referralEarnings(t.db, chain.direct.id)).toBe(1000);
    expect(await referralEarnings(t.db, chain.grand.id)).toBe(500);
    const status = await getReferralPayoutStatus(t.db, purchase.id);
    expect(status.payouts.map((p) => [p.level, p.amount, p.status])).toEqual([
      ['direct', 1000, 'paid'],
      ['grand', 500, 'paid'],
    ]);
    expect(status.events.map((e) => [e.from, e.to, e.actor])).toEqual([
      [null, 'queued', 'api'],
      ['queued', 'completed', 'worker'],
    ]);
    const report = await readInvariants(t.db);
    expect(report.ledgerTotals).toEqual({ EUR: 0 });
    expect(report.doubleCredits).toBe(0);
  });
});

describe('processReferralPayouts with the ledger gateway, beyond the plain case', () => {
  it('pays only the levels an earlier attempt recorded and left unpaid, as they were recorded', async () => {
    const chain = await seedReferralChain(t.db, { price: 10_000 });
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    // Levels an earlier attempt recorded: direct paid (by the treasury, before the deployment moved to
    // the ledger: a paid level belongs to no gateway any more), grand planned for the ledger and pending.
    await sql`insert into referral_payouts (purchase_id, level, beneficiary_id, rate_bps, amount, currency, status,
                                            reference, paid_at, gateway)
              values (${purchase.id}, 'direct', ${chain.direct.id}, 1000, 1000, 'EUR', 'paid', 'ref_earlier', now(), 'http'),
                     (${purchase.id}, 'grand', ${chain.grand.id}, 500, 400, 'EUR', 'pending', null, null, 'ledger')`.execute(
      t.db,
    );
    const ctx = { db: t.db, gateway: ledgerGateway, minPayout: 1, logger };
    const outcome = await processReferralPayouts(ctx, purchase.id, { actor: 'admin-api', operator: 'bob' });
    expect(outcome).toMatchObject({ status: 'completed', attempts: 1, changed: true });
    expect((await getReferralPayoutStatus(t.db, purchase.id)).events.at(-1)).toMatchObject({
      from: 'queued',
      to: 'completed',
      actor: 'admin-api',
      operator: 'bob',
    });
    expect(outcome.paid).toEqual([{ level: 'grand', amount: 400, currency: 'EUR' }]);
    const status = await getReferralPayoutStatus(t.db, purchase.id);
    expect(status.payouts.map((p) => [p.level, p.amount, p.status, p.reference === 'ref_earlier'])).toEqual([
      ['direct', 1000, 'paid', true],
      ['grand', 400, 'paid', false],
    ]);
    expect(await referralEarnings(t.db, chain.grand.id)).toBe(400);
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(0);
  });

  it('holds in-database payouts too while payouts are paused, one answer per purchase', async () => {
    const chain = await seedReferralChain(t.db, { price: 10_000 });
    const ids = [
      (await confirmedPurchase(t.db, chain.buyer.id, chain.content.id)).id,
      (await confirmedPurchase(t.db, chain.buyer.id, chain.content.id)).id,
    ];
    const gate = new TreasuryGate({ db: t.db, logger, probeLeaseMs: 10_000, refreshMs: 0 });
    const ctx = { db: t.db, gateway: ledgerGateway, minPayout: 1, logger, gate };
    const operator = { actor: 'cli' as const, operator: 'alice' };
    await pausePayouts(t.db, { ...operator, reason: 'audit' });
    try {
      const results = await processReferralPayoutsBatch(
        ctx,
        ids.map((purchaseId) => ({ purchaseId })),
        { actor: 'worker' },
      );
      expect(results.map((r) => [r.purchaseId, r.status, (r as { error?: { code?: string } }).error?.code])).toEqual(
        ids.map((id) => [id, 'rejected', 'payouts_paused']),
      );
      expect(await referralEarnings(t.db, chain.direct.id)).toBe(0);
    } finally {
      await resumePayouts(t.db, operator);
    }
    const paid = await processReferralPayoutsBatch(
      ctx,
      ids.map((purchaseId) => ({ purchaseId })),
      { actor: 'worker' },
    );
    expect(paid.map((r) => r.status)).toEqual(['completed', 'completed']);
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(2000);
    // Asked again as a batch: both settled already, nothing changes and nothing fails.
    const replay = await processReferralPayoutsBatch(
      ctx,
      ids.map((purchaseId) => ({ purchaseId })),
      { actor: 'worker' },
    );
    expect(replay.map((r) => (r.status === 'rejected' ? r : [r.status, r.changed, r.failure, r.paid]))).toEqual([
      ['completed', false, null, []],
      ['completed', false, null, []],
    ]);
  });
});

describe('a failed in-database settlement', () => {
  it('records the attempt with its error and no failed level, on its own and in a batch', async () => {
    const chain = await seedReferralChain(t.db, { price: 10_000 });
    const ids = [
      (await confirmedPurchase(t.db, chain.buyer.id, chain.content.id)).id,
      (await confirmedPurchase(t.db, chain.buyer.id, chain.content.id)).id,
    ];
    await sql
      .raw(`create function refuse_credit_for_test() returns trigger language plpgsql as $$
        begin raise exception 'injected failure crediting'; end $$;
        create trigger refuse_credit_for_test before insert on referral_payouts
          for each row execute function refuse_credit_for_test();`)
      .execute(t.db);
    const ctx = { db: t.db, gateway: ledgerGateway, minPayout: 1, logger };
    try {
      const one = await processReferralPayouts(ctx, ids[0]!, { actor: 'worker' });
      expect(one).toMatchObject({ status: 'retryable', attempts: 1, changed: true, paid: [] });
      expect(one.failure).toMatchObject({ message: 'injected failure crediting', levels: [] });
      const batch = await processReferralPayoutsBatch(
        ctx,
        ids.map((purchaseId) => ({ purchaseId, finalAttempt: true })),
        { actor: 'worker' },
      );
      expect(batch.map((r) => [r.purchaseId, r.status, r.status === 'rejected' ? null : r.attempts])).toEqual([
        [ids[0], 'failed', 2],
        [ids[1], 'failed', 1],
      ]);
    } finally {
      await sql
        .raw('drop trigger refuse_credit_for_test on referral_payouts; drop function refuse_credit_for_test();')
        .execute(t.db);
    }
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(0);
  });
});

describe('the settled log line', () => {
  it('is written once for each purchase this call settled, and for nothing else', async () => {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const captured = pino({ level: 'info' }, stream);
    const paying = await seedReferralChain(t.db, { price: 10_000 });
    const belowMinimum = await seedReferralChain(t.db, { price: 9 });
    const settled = (await confirmedPurchase(t.db, paying.buyer.id, paying.content.id)).id;
    const nothingToPay = (await confirmedPurchase(t.db, belowMinimum.buyer.id, belowMinimum.content.id)).id;
    const ctx = { db: t.db, gateway: ledgerGateway, minPayout: 1, logger: captured };
    const unknown = '00000000-0000-4000-8000-000000000001';
    for (const ids of [[settled, nothingToPay, unknown], [settled], [nothingToPay, settled]]) {
      await processReferralPayoutsBatch(
        ctx,
        ids.map((purchaseId) => ({ purchaseId })),
        { actor: 'worker' },
      );
    }
    const settledLines = lines.filter((l) => l.msg === 'referral payout settled');
    expect(
      settledLines.map((l) => [l.purchaseId, l.actor, l.status, (l.paid as { level: string }[]).map((p) => p.level)]),
    ).toEqual([
      [settled, 'worker', 'completed', ['direct', 'grand']],
      [nothingToPay, 'worker', 'not_applicable', []],
    ]);
  });
});
