import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import {
  countByPayoutStatus,
  createPurchase,
  getReferralPayoutStatus,
  ledgerGateway,
  payoutContextFromConfig,
  TransferSlots,
  httpGateway,
  markReferralPayoutFailed,
  type PayoutContext,
  pausePayouts,
  type RetriedPayout,
  type RetryCounts,
  resumePayouts,
  retryFailedPayouts,
  setReferralCodeActive,
  TreasuryGate,
} from '@referrals/core';
import { confirmedPurchase, seedReferralChain } from '@referrals/testing';
import { useTestDatabase, useFakeTreasury } from '@referrals/testing/vitest';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });
const treasury = useFakeTreasury();

const context = (): PayoutContext => ({
  db: t.db,
  gateway: httpGateway({ treasuryUrl: treasury.url, timeoutMs: 2_000 }),
  minPayout: 1,
  logger,
});

/** A confirmed purchase whose retries are spent, failed `ago` before now. */
async function failedPurchase(ago: string, options: { deactivate?: boolean } = {}) {
  const chain = await seedReferralChain(t.db, { price: 10_000 });
  const { id } = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
  await sql`update purchases set referral_payout_attempts = 5, referral_payout_last_error = 'treasury answered 503'
             where id = ${id}`.execute(t.db);
  expect(await markReferralPayoutFailed(t.db, id, 'worker', 'retries spent')).toEqual({
    status: 'failed',
    changed: true,
    lastError: 'treasury answered 503',
  });
  await sql`update purchases set referral_payout_failed_at = now() - ${ago}::interval where id = ${id}`.execute(t.db);
  if (options.deactivate) await setReferralCodeActive(t.db, chain.directCode.code, false);
  return id;
}

describe('countByPayoutStatus', () => {
  // First in this file: the database has no purchase yet.
  it('answers every status, 0 where no purchase has it', async () => {
    expect(await countByPayoutStatus(t.db)).toEqual({ queued: 0, completed: 0, failed: 0, not_applicable: 0 });
  });
});

describe('payoutContextFromConfig', () => {
  it('builds the context the configuration describes, with a shared gate and the transfer slots', () => {
    const config = {
      payoutGateway: 'http' as const,
      treasuryUrl: treasury.url,
      treasuryTimeoutMs: 1_234,
      referralMinPayout: 7,
      treasuryMaxInFlight: 3,
    };
    const ctx = payoutContextFromConfig(config, { db: t.db, logger });
    expect(ctx).toMatchObject({ db: t.db, logger, minPayout: 7 });
    expect(ctx.gateway).toMatchObject({ kind: 'external', name: 'http', timeoutMs: 1_234 });
    expect(ctx.gate).toBeInstanceOf(TreasuryGate);
    expect(ctx.transferSlots).toBeInstanceOf(TransferSlots);
    expect(ctx.transferSlots?.capacity).toBe(3);
    expect(payoutContextFromConfig(config, { db: t.db, logger, gateway: ledgerGateway }).gateway).toBe(ledgerGateway);
  });
});

describe('markReferralPayoutFailed', () => {
  it('fails a queued purchase keeping its last error, and leaves any other alone', async () => {
    const chain = await seedReferralChain(t.db, { price: 10_000 });
    const { id } = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    expect(await markReferralPayoutFailed(t.db, id, 'worker', 'retries spent')).toEqual({
      status: 'failed',
      changed: true,
      lastError: 'retries spent',
    });
    const row = await t.db.selectFrom('purchases').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ referral_payout_status: 'failed', referral_payout_attempts: 0 });
    expect(row.referral_payout_failed_at).toBeInstanceOf(Date);
    const status = await getReferralPayoutStatus(t.db, id);
    expect(status.events.at(-1)).toMatchObject({
      from: 'queued',
      to: 'failed',
      actor: 'worker',
      attempt: 0,
      error: 'retries spent',
    });

    // Not queued any more: nothing changes, and the answer says where it stands.
    expect(await markReferralPayoutFailed(t.db, id, 'cli', 'again')).toEqual({
      status: 'failed',
      changed: false,
      lastError: 'retries spent',
    });
    expect((await getReferralPayoutStatus(t.db, id)).events).toHaveLength(2);
    const free = await seedReferralChain(t.db, { price: 0 });
    const settled = await confirmedPurchase(t.db, free.buyer.id, free.content.id);
    expect(await markReferralPayoutFailed(t.db, settled.id, 'worker', 'x')).toEqual({
      status: 'not_applicable',
      changed: false,
      lastError: null,
    });
    await expect(markReferralPayoutFailed(t.db, randomUUID(), 'worker', 'x')).rejects.toMatchObject({
      code: 'not_found',
    });
    const pending = await createPurchase(t.db, { buyerId: free.buyer.id, contentId: free.content.id });
    await expect(markReferralPayoutFailed(t.db, pending.purchase.id, 'worker', 'x')).rejects.toMatchObject({
      code: 'purchase_not_confirmed',
    });
  });
});

describe('retryFailedPayouts', () => {
  it('retries every failed purchase oldest first and reports each outcome', async () => {
    await sql`update purchases set referral_payout_status = 'completed', referral_payout_failed_at = null
               where referral_payout_status = 'failed'`.execute(t.db);
    const oldest = await failedPurchase('3 hours');
    const refused = await failedPurchase('2 hours');
    const inactive = await failedPurchase('1 hour', { deactivate: true });
    treasury.setMode({
      kind: 'refuse',
      status: 422,
      when: (transfer) => transfer.idempotencyKey.startsWith(refused),
      message: () => 'beneficiary account closed',
    });

    const started: number[] = [];
    const progress: [RetriedPayout, RetryCounts][] = [];
    const report = await retryFailedPayouts(context(), {
      actor: 'cli',
      concurrency: 1,
      onStart: (total) => started.push(total),
      onProgress: (item, counts) => progress.push([item, counts]),
    });
    treasury.setMode({ kind: 'succeed' });

    expect(started).toEqual([3]);
    expect(report).toMatchObject({ total: 3, completed: 1, stillFailed: 1, notApplicable: 1, notAttempted: 0 });
    expect(report.results).toEqual([
      { purchaseId: oldest, status: 'completed', error: null },
      { purchaseId: refused, status: 'failed', error: expect.stringMatching(/refused.*beneficiary account closed/) },
      { purchaseId: inactive, status: 'not_applicable', error: null },
    ]);
    expect(progress).toEqual([
      [report.results[0], { completed: 1, failed: 0 }],
      [report.results[1], { completed: 1, failed: 1 }],
      [report.results[2], { completed: 2, failed: 1 }],
    ]);
    expect(await getReferralPayoutStatus(t.db, refused)).toMatchObject({ status: 'failed', attempts: 6 });
    expect(await getReferralPayoutStatus(t.db, oldest)).toMatchObject({ status: 'completed', attempts: 6 });

    // Only the purchase still failed comes round again, and several lanes share the work.
    const again = await retryFailedPayouts(context(), { actor: 'cli', concurrency: 4 });
    expect(again).toMatchObject({ total: 1, completed: 1, stillFailed: 0, notApplicable: 0, notAttempted: 0 });
    expect(again.results).toEqual([{ purchaseId: refused, status: 'completed', error: null }]);
    expect(await retryFailedPayouts(context(), { actor: 'cli', concurrency: 4 })).toEqual({
      total: 0,
      completed: 0,
      stillFailed: 0,
      notApplicable: 0,
      notAttempted: 0,
      results: [],
    });
  });

  it('carries on past a purchase it cannot process, reporting it failed with the reason', async () => {
    const foreign = await failedPurchase('70 minutes');
    const fine = await failedPurchase('65 minutes');
    // Its levels were planned for the ledger: the http gateway must not settle them.
    const chain = await t.db
      .selectFrom('purchases as p')
      .innerJoin('user_referrals as r', 'r.user_id', 'p.buyer_id')
      .select(['r.direct_referrer_id'])
      .where('p.id', '=', foreign)
      .executeTakeFirstOrThrow();
    await sql`insert into referral_payouts (purchase_id, level, beneficiary_id, rate_bps, amount, currency, status, gateway)
              values (${foreign}, 'direct', ${chain.direct_referrer_id}, 1000, 1000, 'EUR', 'failed', 'ledger')`.execute(
      t.db,
    );
    const report = await retryFailedPayouts(context(), { actor: 'cli', concurrency: 1 });
    expect(report).toMatchObject({ total: 2, completed: 1, stillFailed: 1, notAttempted: 0 });
    expect(report.results).toEqual([
      {
        purchaseId: foreign,
        status: 'failed',
        error: `purchase ${foreign}: direct level was planned for the "ledger" payout gateway; this process pays through "http", so nothing was transferred (settle it with PAYOUT_GATEWAY=ledger)`,
      },
      { purchaseId: fine, status: 'completed', error: null },
    ]);
    expect(treasury.requestsFor(`${foreign}:direct`)).toBe(0);
    expect(await getReferralPayoutStatus(t.db, foreign)).toMatchObject({ status: 'failed', attempts: 5 });
    // Out of the way of the tests below.
    await sql`update purchases set referral_payout_status = 'not_applicable', referral_payout_failed_at = null
               where id = ${foreign}`.execute(t.db);
  });

  it('takes no new purchase once aborted, and reports the rest as not attempted', async () => {
    const ids = [await failedPurchase('50 minutes'), await failedPurchase('40 minutes')];
    const controller = new AbortController();
    const report = await retryFailedPayouts(context(), {
      actor: 'cli',
      concurrency: 1,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    });
    expect(report).toMatchObject({ total: 2, completed: 1, stillFailed: 0, notAttempted: 1 });
    expect(report.results).toEqual([{ purchaseId: ids[0], status: 'completed', error: null }]);
    expect(await getReferralPayoutStatus(t.db, ids[1]!)).toMatchObject({ status: 'failed', attempts: 5 });
    const rest = await retryFailedPayouts(context(), { actor: 'cli', concurrency: 2 });
    expect(rest.results).toEqual([{ purchaseId: ids[1], status: 'completed', error: null }]);
  });

  it('is refused as a whole while payouts are paused, retrying nothing', async () => {
    const id = await failedPurchase('30 minutes');
    const operator = { actor: 'cli' as const, operator: 'alice' };
    await pausePayouts(t.db, { ...operator, reason: 'treasury maintenance' });
    const gate = new TreasuryGate({ db: t.db, logger, probeLeaseMs: 10_000, refreshMs: 0 });
    try {
      await expect(retryFailedPayouts({ ...context(), gate }, { actor: 'cli', concurrency: 2 })).rejects.toMatchObject({
        code: 'payouts_paused',
      });
      expect(await getReferralPayoutStatus(t.db, id)).toMatchObject({ status: 'failed', attempts: 5 });
    } finally {
      await resumePayouts(t.db, operator);
    }
    const resumed = await retryFailedPayouts({ ...context(), gate }, { actor: 'cli', concurrency: 2 });
    expect(resumed.results).toEqual([{ purchaseId: id, status: 'completed', error: null }]);
  });

  it('walks every failed purchase when there are more than one page of them', async () => {
    const template = await failedPurchase('20 minutes');
    // 500 more failed purchases, copies of one that cannot be paid (their buyer has no referrer).
    await sql`
      insert into purchases (buyer_id, content_id, price, currency, status, payment_reference, confirmed_at,
                             platform_fee, referral_payout_status, referral_payout_attempts,
                             referral_payout_last_error, referral_payout_queued_at, referral_payout_failed_at)
      select p.content_id_creator, p.content_id, p.price, p.currency, 'confirmed', 'pay_copy_' || g, now(),
             p.platform_fee, 'failed', 5, 'copied', now(), now() - interval '10 minutes' + g * interval '1 ms'
        from (select pu.*, c.creator_id as content_id_creator from purchases pu join content c on c.id = pu.content_id
               where pu.id = ${template}) p, generate_series(1, 500) g`.execute(t.db);
    const controller = new AbortController();
    let total = 0;
    const report = await retryFailedPayouts(context(), {
      actor: 'cli',
      concurrency: 1,
      signal: controller.signal,
      onStart: (n) => {
        total = n;
        controller.abort();
      },
    });
    expect(total).toBe(501);
    expect(report).toMatchObject({ total: 501, notAttempted: 501, results: [] });
  });
});
