import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import {
  createPurchase,
  getReferralPayoutStatus,
  httpGateway,
  LEASE_MARGIN_MS,
  type PayoutContext,
  pausePayouts,
  processReferralPayouts,
  referralEarnings,
  resumePayouts,
  setReferralCodeActive,
  TransferSlots,
  TreasuryGate,
} from '@referrals/core';
import {
  type ChainOptions,
  confirmedPurchase,
  type FakeTreasury,
  readInvariants,
  seedReferralChain,
  startFakeTreasury,
  waitFor,
} from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });
const TIMEOUT_MS = 300;
let treasury: FakeTreasury;
/** A second treasury endpoint, so that one processor's transfers can be held while another's are answered. */
let other: FakeTreasury;

beforeAll(async () => {
  [treasury, other] = await Promise.all([startFakeTreasury(), startFakeTreasury()]);
});
afterAll(async () => {
  await Promise.all([treasury.close(), other.close()]);
});
beforeEach(() => {
  for (const each of [treasury, other]) {
    each.release();
    each.setMode({ kind: 'succeed' });
  }
});

const contextFor = (server: FakeTreasury, timeoutMs = TIMEOUT_MS): PayoutContext => ({
  db: t.db,
  gateway: httpGateway({ treasuryUrl: server.url, timeoutMs }),
  minPayout: 1,
  logger,
});

async function queuedPurchase(options: ChainOptions = { price: 10_000 }) {
  const chain = await seedReferralChain(t.db, options);
  const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
  expect(purchase.referralPayoutStatus).toBe('queued');
  return { chain, id: purchase.id };
}

const purchaseRow = (id: string) =>
  t.db.selectFrom('purchases').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

describe('settlement through the http gateway: what is not paid', () => {
  it('rejects an unknown purchase and a pending one without a request to the treasury', async () => {
    const ctx = contextFor(treasury);
    const ghost = randomUUID();
    await expect(processReferralPayouts(ctx, ghost, { actor: 'cli' })).rejects.toMatchObject({
      code: 'not_found',
      message: `purchase ${ghost} not found`,
    });

    const chain = await seedReferralChain(t.db);
    const { purchase } = await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id });
    await expect(processReferralPayouts(ctx, purchase.id, { actor: 'cli' })).rejects.toMatchObject({
      code: 'purchase_not_confirmed',
    });
    expect(treasury.requestCount).toBe(0);
    const row = await purchaseRow(purchase.id);
    expect(row).toMatchObject({
      status: 'pending',
      referral_payout_status: null,
      referral_payout_attempts: 0,
      referral_payout_lease_owner: null,
    });
    expect(
      await t.db.selectFrom('referral_payouts').selectAll().where('purchase_id', '=', purchase.id).execute(),
    ).toEqual([]);
  });

  it.each([
    { name: 'both levels below the minimum', chain: { price: 9 }, deactivate: false, reason: 'below_minimum' },
    { name: 'an inactive referral code', chain: { price: 10_000 }, deactivate: true, reason: 'code_inactive' },
  ])('settles $name as not_applicable without a transfer', async (c) => {
    const { chain, id } = await queuedPurchase(c.chain);
    if (c.deactivate) await setReferralCodeActive(t.db, chain.directCode.code, false);
    const before = treasury.requestCount;
    const ctx = contextFor(treasury);

    const outcome = await processReferralPayouts(ctx, id, { actor: 'worker', operator: 'carol' });
    expect(outcome).toMatchObject({
      status: 'not_applicable',
      reason: c.reason,
      attempts: 1,
      changed: true,
      paid: [],
      failure: null,
    });
    expect(outcome.completedAt).toBeInstanceOf(Date);
    expect(treasury.requestCount).toBe(before);
    const status = await getReferralPayoutStatus(t.db, id);
    expect(status.payouts).toEqual([]);
    expect(status.events.map((e) => [e.from, e.to, e.actor, e.operator, e.attempt])).toEqual([
      [null, 'queued', 'api', null, 0],
      ['queued', 'not_applicable', 'worker', 'carol', 1],
    ]);
    expect((await purchaseRow(id)).referral_payout_lease_owner).toBeNull();

    // Settled: asked again, nothing changes and nothing is paid.
    const again = await processReferralPayouts(ctx, id, { actor: 'cli' });
    expect(again).toMatchObject({ status: 'not_applicable', reason: c.reason, attempts: 1, changed: false, paid: [] });
    expect(treasury.requestCount).toBe(before);
  });

  it('answers a completed purchase as settled, unchanged, with nothing paid by this call', async () => {
    const { id } = await queuedPurchase();
    const ctx = contextFor(treasury);
    const first = await processReferralPayouts(ctx, id, { actor: 'admin-api', operator: 'dave' });
    expect(first).toMatchObject({ status: 'completed', changed: true, attempts: 1, failure: null });
    expect((await getReferralPayoutStatus(t.db, id)).events.at(-1)).toMatchObject({
      from: 'queued',
      to: 'completed',
      actor: 'admin-api',
      operator: 'dave',
    });
    expect(first.paid).toEqual([
      { level: 'direct', amount: 1000, currency: 'EUR' },
      { level: 'grand', amount: 500, currency: 'EUR' },
    ]);
    const requests = treasury.requestCount;
    const again = await processReferralPayouts(ctx, id, { actor: 'admin-api' });
    expect(again).toMatchObject({ status: 'completed', changed: false, attempts: 1, paid: [], failure: null });
    expect(treasury.requestCount).toBe(requests);
  });
});

describe('the lease of a network settlement', () => {
  /** The lease as taken when the levels were recorded: both by the clock of one transaction. */
  const leaseLengthMs = async (id: string) => {
    const { rows } = await sql<{ ms: string }>`
      select extract(epoch from p.referral_payout_lease_until - min(r.created_at)) * 1000 as ms
        from purchases p join referral_payouts r on r.purchase_id = p.id
       where p.id = ${id} group by p.referral_payout_lease_until`.execute(t.db);
    return Math.round(Number(rows[0]!.ms));
  };

  it('lasts one transfer timeout per level in flight plus the margin, and ends with the settlement', async () => {
    for (const [options, levels] of [
      [{ price: 10_000 }, 2],
      [{ price: 10_000, withGrand: false }, 1],
    ] as const) {
      const { id } = await queuedPurchase(options);
      treasury.hold();
      const settling = processReferralPayouts(contextFor(treasury, 30_000), id, { actor: 'worker' });
      await waitFor(() => treasury.heldCount() === levels, { what: 'the transfers to reach the treasury' });
      expect(await leaseLengthMs(id)).toBe(30_000 * levels + LEASE_MARGIN_MS);
      expect((await purchaseRow(id)).referral_payout_lease_owner).not.toBeNull();
      treasury.release();
      expect(await settling).toMatchObject({ status: 'completed', changed: true });
      const row = await purchaseRow(id);
      expect([row.referral_payout_lease_owner, row.referral_payout_lease_until]).toEqual([null, null]);
    }
  });
});

describe('a processor that lost its lease', () => {
  /**
   * Processor A's transfers are in flight at `treasury` when its lease runs out (set back by the
   * database clock here); processor B then takes the purchase over and transfers through `other`.
   */
  async function overlap() {
    const { chain, id } = await queuedPurchase();
    treasury.hold();
    other.hold();
    const a = processReferralPayouts(contextFor(treasury, 30_000), id, { actor: 'worker', finalAttempt: true });
    await waitFor(() => treasury.heldCount() === 2, { what: "A's transfers to reach the treasury" });
    const leaseA = (await purchaseRow(id)).referral_payout_lease_owner;
    expect(leaseA).not.toBeNull();
    await sql`update purchases set referral_payout_lease_until = now() - interval '1 second' where id = ${id}`.execute(
      t.db,
    );
    const b = processReferralPayouts(contextFor(other, 30_000), id, { actor: 'cli' });
    await waitFor(() => other.heldCount() === 2, { what: "B's transfers to reach the treasury" });
    const leaseB = (await purchaseRow(id)).referral_payout_lease_owner;
    expect(leaseB).not.toBeNull();
    expect(leaseB).not.toBe(leaseA);
    return { chain, id, a, b, leaseB };
  }

  it("records nothing for A's late failure while B holds the lease, and B's result stands", async () => {
    const { chain, id, a, b, leaseB } = await overlap();
    treasury.setMode({ kind: 'fail', times: Infinity });
    treasury.release();
    const late = await a;
    expect(late).toMatchObject({ status: 'retryable', attempts: 0, changed: false, paid: [] });
    expect(late.failure?.levels).toEqual(['direct', 'grand']);
    expect(late.failure?.message).toMatch(/treasury answered 500/);
    const during = await purchaseRow(id);
    expect(during).toMatchObject({
      referral_payout_status: 'queued',
      referral_payout_attempts: 0,
      referral_payout_last_error: null,
      referral_payout_failed_at: null,
      referral_payout_lease_owner: leaseB,
    });

    other.release();
    const settled = await b;
    expect(settled).toMatchObject({ status: 'completed', attempts: 1, changed: true, failure: null });
    expect(settled.paid.map((p) => p.level)).toEqual(['direct', 'grand']);
    const status = await getReferralPayoutStatus(t.db, id);
    expect(status).toMatchObject({ status: 'completed', attempts: 1, lastError: null });
    expect(status.events.map((e) => [e.to, e.actor, e.attempt])).toEqual([
      ['queued', 'api', 0],
      ['completed', 'cli', 1],
    ]);
    expect(status.payouts.map((p) => [p.level, p.status])).toEqual([
      ['direct', 'paid'],
      ['grand', 'paid'],
    ]);
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(1000);
    expect(await referralEarnings(t.db, chain.grand.id)).toBe(500);
  });

  it("records nothing for A's late failure once B has completed the purchase", async () => {
    const { chain, id, a, b } = await overlap();
    other.release();
    expect(await b).toMatchObject({ status: 'completed', attempts: 1, changed: true });
    treasury.setMode({ kind: 'fail', times: Infinity });
    treasury.release();
    const late = await a;
    expect(late).toMatchObject({ status: 'completed', attempts: 1, changed: false, paid: [] });
    expect(late.failure?.message).toMatch(/treasury answered 500/);
    const status = await getReferralPayoutStatus(t.db, id);
    expect(status).toMatchObject({ status: 'completed', attempts: 1, lastError: null });
    expect(status.events).toHaveLength(2);
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(1000);
    expect((await readInvariants(t.db)).doubleCredits).toBe(0);
  });

  it("A's late success after B completed the purchase completes nothing a second time", async () => {
    const { chain, id, a, b } = await overlap();
    other.release();
    expect(await b).toMatchObject({ status: 'completed', attempts: 1, changed: true });
    treasury.release();
    expect(await a).toMatchObject({ status: 'completed', attempts: 1 });
    const status = await getReferralPayoutStatus(t.db, id);
    expect(status.events.map((e) => [e.to, e.actor])).toEqual([
      ['queued', 'api'],
      ['completed', 'cli'],
    ]);
    expect(status.attempts).toBe(1);
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(1000);
    expect(await referralEarnings(t.db, chain.grand.id)).toBe(500);
  });

  it('records a late failure when no processor holds the lease any more', async () => {
    const { id } = await queuedPurchase();
    treasury.hold();
    const a = processReferralPayouts(contextFor(treasury, 30_000), id, { actor: 'worker' });
    await waitFor(() => treasury.heldCount() === 2, { what: "A's transfers to reach the treasury" });
    // Another processor took the purchase over and gave it back (it met the gate shut).
    await sql`update purchases set referral_payout_lease_owner = null, referral_payout_lease_until = null
               where id = ${id}`.execute(t.db);
    treasury.setMode({ kind: 'fail', times: Infinity });
    treasury.release();
    const late = await a;
    expect(late).toMatchObject({ status: 'retryable', attempts: 1, changed: true, paid: [] });
    expect(late.failure?.levels).toEqual(['direct', 'grand']);
    expect(await purchaseRow(id)).toMatchObject({
      referral_payout_status: 'queued',
      referral_payout_attempts: 1,
      referral_payout_last_error: late.failure?.message,
    });
  });
});

describe('failures a network settlement records', () => {
  it('counts a failure before any transfer, even over a lease a crashed processor left behind', async () => {
    const { id } = await queuedPurchase();
    await sql`update purchases set referral_payout_lease_owner = gen_random_uuid(),
                referral_payout_lease_until = now() - interval '1 minute' where id = ${id}`.execute(t.db);
    await sql
      .raw(`create function refuse_levels_for_test() returns trigger language plpgsql as $$
        begin raise exception 'injected failure recording levels'; end $$;
        create trigger refuse_levels_for_test before insert on referral_payouts
          for each row execute function refuse_levels_for_test();`)
      .execute(t.db);
    let outcome: Awaited<ReturnType<typeof processReferralPayouts>>;
    try {
      outcome = await processReferralPayouts(contextFor(treasury), id, { actor: 'worker' });
    } finally {
      await sql
        .raw('drop trigger refuse_levels_for_test on referral_payouts; drop function refuse_levels_for_test();')
        .execute(t.db);
    }
    expect(outcome).toMatchObject({ status: 'retryable', attempts: 1, changed: true, paid: [] });
    expect(outcome.failure).toMatchObject({ message: 'injected failure recording levels', levels: [] });
    expect(await purchaseRow(id)).toMatchObject({
      referral_payout_attempts: 1,
      referral_payout_last_error: 'injected failure recording levels',
      referral_payout_lease_owner: null,
    });
    expect(treasury.requestsFor(`${id}:direct`)).toBe(0);
  });

  it('stamps the failure time when the purchase fails, and again when a repair fails', async () => {
    const { id } = await queuedPurchase();
    treasury.setMode({ kind: 'fail', times: Infinity });
    const ctx = contextFor(treasury);
    expect(await processReferralPayouts(ctx, id, { actor: 'worker' })).toMatchObject({ status: 'retryable' });
    expect((await purchaseRow(id)).referral_payout_failed_at).toBeNull();
    expect(await processReferralPayouts(ctx, id, { actor: 'worker', finalAttempt: true })).toMatchObject({
      status: 'failed',
      attempts: 2,
    });
    expect((await purchaseRow(id)).referral_payout_failed_at).toBeInstanceOf(Date);
    await sql`update purchases set referral_payout_failed_at = '2020-01-01T00:00:00Z' where id = ${id}`.execute(t.db);
    expect(await processReferralPayouts(ctx, id, { actor: 'cli', operator: 'alice' })).toMatchObject({
      status: 'failed',
      attempts: 3,
    });
    const again = (await purchaseRow(id)).referral_payout_failed_at!;
    expect(again.getTime()).toBeGreaterThan(Date.parse('2020-01-02T00:00:00Z'));
    // The failed repair names who asked for it in the purchase's history.
    expect((await getReferralPayoutStatus(t.db, id)).events.at(-1)).toMatchObject({
      from: 'failed',
      to: 'failed',
      actor: 'cli',
      operator: 'alice',
      attempt: 3,
    });
  });
});

describe('levels an earlier attempt recorded', () => {
  it('are still owed when today the plan would pay nothing, and are paid under a new lease', async () => {
    const { chain, id } = await queuedPurchase();
    treasury.setMode({ kind: 'fail', times: Infinity });
    expect(await processReferralPayouts(contextFor(treasury), id, { actor: 'worker' })).toMatchObject({
      status: 'retryable',
    });
    // The code is switched off after the levels were planned: what was planned is still owed.
    await setReferralCodeActive(t.db, chain.directCode.code, false);
    treasury.setMode({ kind: 'succeed' });
    treasury.hold();
    const settling = processReferralPayouts(contextFor(treasury, 30_000), id, { actor: 'worker' });
    await waitFor(() => treasury.heldCount() === 2, { what: 'the owed levels to reach the treasury' });
    // The failed attempt gave its lease back; this one holds a new one while its transfers are out.
    const leased = await purchaseRow(id);
    expect(leased.referral_payout_lease_owner).not.toBeNull();
    expect(leased.referral_payout_lease_until).toBeInstanceOf(Date);
    treasury.release();
    const outcome = await settling;
    expect(outcome).toMatchObject({ status: 'completed', attempts: 2 });
    expect(outcome.paid.map((p) => [p.level, p.amount])).toEqual([
      ['direct', 1000],
      ['grand', 500],
    ]);
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(1000);
  });
});

describe('what a failed network attempt records', () => {
  it('fails the purchase at once when the treasury refuses a level, and pays the other', async () => {
    const { chain, id } = await queuedPurchase();
    treasury.setMode({
      kind: 'refuse',
      status: 422,
      code: 'account_closed',
      when: (transfer) => transfer.idempotencyKey.endsWith(':grand'),
      message: () => 'beneficiary account closed',
    });
    const outcome = await processReferralPayouts(contextFor(treasury), id, { actor: 'worker' });
    expect(outcome).toMatchObject({ status: 'failed', attempts: 1, changed: true, paid: [] });
    expect(outcome.failure?.levels).toEqual(['grand']);
    expect(outcome.failure?.message).toBe(
      'grand refused: treasury answered 422: {"code":"account_closed","message":"beneficiary account closed"}',
    );
    const status = await getReferralPayoutStatus(t.db, id);
    expect(status.payouts.map((p) => [p.level, p.status])).toEqual([
      ['direct', 'paid'],
      ['grand', 'failed'],
    ]);
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(1000);
    expect(await referralEarnings(t.db, chain.grand.id)).toBe(0);
  });

  it('records one failed level by its own error, and several by level', async () => {
    const unavailable =
      'treasury answered 500: {"code":"treasury_unavailable","message":"the treasury is having a bad day"}';
    const one = await queuedPurchase();
    treasury.setMode({ kind: 'fail', times: Infinity, only: (key) => key.endsWith(':grand') });
    const single = await processReferralPayouts(contextFor(treasury), one.id, { actor: 'worker' });
    expect(single).toMatchObject({ status: 'retryable', attempts: 1 });
    expect(single.failure).toMatchObject({ message: unavailable, levels: ['grand'] });

    const both = await queuedPurchase();
    treasury.setMode({ kind: 'fail', times: Infinity });
    const double = await processReferralPayouts(contextFor(treasury), both.id, { actor: 'worker' });
    expect(double.failure).toMatchObject({
      message: `direct: ${unavailable}; grand: ${unavailable}`,
      levels: ['direct', 'grand'],
    });
  });
});

describe('a network settlement and the treasury gate', () => {
  const operator = { actor: 'cli' as const, operator: 'alice' };
  const gated = (slots?: TransferSlots): PayoutContext => ({
    ...contextFor(treasury, 30_000),
    gate: new TreasuryGate({ db: t.db, logger, probeLeaseMs: 60_000, refreshMs: 0 }),
    transferSlots: slots,
  });

  it('holds a level that waits for a slot while payouts get paused, keeps the level paid and spends no attempt', async () => {
    const { chain, id } = await queuedPurchase();
    treasury.hold();
    const settling = processReferralPayouts(gated(new TransferSlots(1)), id, { actor: 'worker' }).catch(
      (error: unknown) => error,
    );
    await waitFor(() => treasury.heldCount() === 1, { what: 'the first level to reach the treasury' });
    await pausePayouts(t.db, { ...operator, reason: 'treasury maintenance' });
    try {
      treasury.release();
      expect(await settling).toMatchObject({ code: 'payouts_paused' });
      expect(treasury.requestsFor(`${id}:direct`)).toBe(1);
      expect(treasury.requestsFor(`${id}:grand`)).toBe(0);
      const status = await getReferralPayoutStatus(t.db, id);
      expect(status).toMatchObject({ status: 'queued', attempts: 0, lastError: null });
      expect(status.payouts.map((p) => [p.level, p.status])).toEqual([
        ['direct', 'paid'],
        ['grand', 'pending'],
      ]);
      expect(await referralEarnings(t.db, chain.direct.id)).toBe(1000);
      expect((await purchaseRow(id)).referral_payout_lease_owner).toBeNull();
      await expect(processReferralPayouts(gated(), id, { actor: 'worker' })).rejects.toMatchObject({
        code: 'payouts_paused',
      });
    } finally {
      await resumePayouts(t.db, operator);
    }
    const done = await processReferralPayouts(gated(new TransferSlots(1)), id, { actor: 'worker' });
    expect(done).toMatchObject({ status: 'completed', attempts: 1 });
    expect(done.paid.map((p) => p.level)).toEqual(['grand']);
    expect(treasury.requestsFor(`${id}:direct`)).toBe(1);
    expect(await referralEarnings(t.db, chain.grand.id)).toBe(500);
  });

  // Last in this file: it leaves the breaker open.
  it('spends no attempt on the purchase whose transient failures open the breaker', async () => {
    treasury.setMode({ kind: 'fail', times: Infinity });
    const ids = [(await queuedPurchase()).id, (await queuedPurchase()).id, (await queuedPurchase()).id];
    const ctx = gated();
    // Two failures each: the run reaches 4 (the breaker opens at 5), and each attempt counts.
    for (const id of ids.slice(0, 2)) {
      expect(await processReferralPayouts(ctx, id, { actor: 'worker' })).toMatchObject({
        status: 'retryable',
        attempts: 1,
      });
    }
    await expect(processReferralPayouts(ctx, ids[2]!, { actor: 'worker' })).rejects.toMatchObject({
      code: 'treasury_circuit_open',
    });
    expect(await purchaseRow(ids[2]!)).toMatchObject({
      referral_payout_attempts: 0,
      referral_payout_last_error: null,
      referral_payout_lease_owner: null,
    });
  });

  // After the breaker test: the gate is open.
  it('sends the probe the gate hands out, and its success closes the gate', async () => {
    const { id } = await queuedPurchase();
    treasury.setMode({ kind: 'succeed' });
    await sql`update treasury_gate set next_probe_at = now() - interval '1 second'`.execute(t.db);
    const outcome = await processReferralPayouts(gated(), id, { actor: 'worker' });
    expect(outcome).toMatchObject({ status: 'completed', attempts: 1 });
    expect(treasury.requestsFor(`${id}:direct`)).toBe(1);
    const gate = await t.db.selectFrom('treasury_gate').select('state').executeTakeFirstOrThrow();
    expect(gate.state).toBe('closed');
  });
});
