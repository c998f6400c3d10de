import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ledgerGateway,
  ledgerTotals,
  processReferralPayouts,
  recordMovement,
  referralEarnings,
  referralMovement,
} from '@referrals/core';
import { confirmedPurchase, type ReferralChain, seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });

let chain: ReferralChain;
let paidPurchase: string;

beforeAll(async () => {
  chain = await seedReferralChain(t.db, { price: 10_000 });
  paidPurchase = (await confirmedPurchase(t.db, chain.buyer.id, chain.content.id)).id;
  const outcome = await processReferralPayouts(
    { db: t.db, gateway: ledgerGateway, minPayout: 1, logger },
    paidPurchase,
    { actor: 'worker' },
  );
  expect(outcome.paid.map((p) => [p.level, p.amount])).toEqual([
    ['direct', 1000],
    ['grand', 500],
  ]);
});

const entryCount = async () =>
  Number((await sql<{ n: string }>`select count(*) as n from ledger_entries`.execute(t.db)).rows[0]!.n);

/** Rows as a test writes them by hand: amounts and accounts of one transaction id. */
async function insertRaw(
  rows: { account: string; userId?: string; amount: number; currency?: string }[],
): Promise<void> {
  const transactionId = randomUUID();
  await t.db
    .insertInto('ledger_entries')
    .values(
      rows.map((r) => ({
        transaction_id: transactionId,
        account: r.account as 'platform_treasury',
        user_id: r.userId ?? null,
        amount: r.amount,
        currency: r.currency ?? 'EUR',
        purchase_id: null,
      })),
    )
    .execute();
}

describe('recordMovement', () => {
  it('leaves zero postings out, and writes nothing for a movement of zeros', async () => {
    const before = await entryCount();
    await t.db.transaction().execute((trx) =>
      recordMovement(trx, {
        currency: 'EUR',
        purchaseId: null,
        postings: [
          { account: 'platform_treasury', userId: null, amount: -7 },
          { account: 'creator_earnings', userId: chain.creator.id, amount: 0 },
          { account: 'platform_treasury', userId: null, amount: 7 },
        ],
      }),
    );
    expect(await entryCount()).toBe(before + 2);
    await t.db.transaction().execute((trx) =>
      recordMovement(trx, {
        currency: 'EUR',
        purchaseId: null,
        postings: [{ account: 'platform_treasury', userId: null, amount: 0 }],
      }),
    );
    expect(await entryCount()).toBe(before + 2);
  });
});

describe('the ledger refuses, in the database', () => {
  it('a movement that does not sum to zero, per currency', async () => {
    const before = await entryCount();
    // At least the confirm and both credits of the purchase (3 + 2 + 2 rows): the refusals below act on a real ledger.
    expect(before).toBeGreaterThanOrEqual(7);
    const unbalanced = { code: '23514', constraint: 'ledger_entries_balanced' };

    await expect(
      insertRaw([
        { account: 'platform_treasury', amount: -100 },
        { account: 'referral_earnings', userId: chain.direct.id, amount: 99 },
      ]),
    ).rejects.toMatchObject(unbalanced);
    await expect(insertRaw([{ account: 'platform_treasury', amount: 100 }])).rejects.toMatchObject(unbalanced);
    // Zero overall but not within each currency.
    await expect(
      insertRaw([
        { account: 'platform_treasury', amount: -100, currency: 'EUR' },
        { account: 'referral_earnings', userId: chain.direct.id, amount: 100, currency: 'USD' },
      ]),
    ).rejects.toMatchObject(unbalanced);
    // Two statements of one movement: the first one alone is already refused.
    const transactionId = randomUUID();
    const half = (amount: number) =>
      sql`insert into ledger_entries (transaction_id, account, amount, currency) values (${transactionId}, 'platform_treasury', ${amount}, 'EUR')`;
    await expect(
      t.db.transaction().execute(async (trx) => {
        await half(-100).execute(trx);
        await half(100).execute(trx);
      }),
    ).rejects.toMatchObject(unbalanced);

    expect(await entryCount()).toBe(before);
    // A balanced movement is accepted: the refusals above are about balance, not about writing at all.
    await insertRaw([
      { account: 'platform_treasury', amount: -100, currency: 'USD' },
      { account: 'platform_treasury', amount: 100, currency: 'USD' },
    ]);
    expect(await entryCount()).toBe(before + 2);
  });

  it('UPDATE, DELETE and TRUNCATE: entries are append-only', async () => {
    const before = await t.db.selectFrom('ledger_entries').selectAll().orderBy('id').execute();
    expect(before.length).toBeGreaterThan(0);
    const appendOnly = { code: '23001', message: 'ledger entries are append-only' };

    await expect(sql`update ledger_entries set amount = amount * 2`.execute(t.db)).rejects.toMatchObject(appendOnly);
    await expect(
      sql`update ledger_entries set created_at = now() where id = ${before[0]!.id}`.execute(t.db),
    ).rejects.toMatchObject(appendOnly);
    await expect(sql`delete from ledger_entries where id = ${before[0]!.id}`.execute(t.db)).rejects.toMatchObject(
      appendOnly,
    );
    await expect(sql`delete from ledger_entries`.execute(t.db)).rejects.toMatchObject(appendOnly);
    await expect(sql`truncate ledger_entries`.execute(t.db)).rejects.toMatchObject(appendOnly);
    await expect(sql`truncate ledger_entries, referral_payouts cascade`.execute(t.db)).rejects.toMatchObject(
      appendOnly,
    );

    expect(await t.db.selectFrom('ledger_entries').selectAll().orderBy('id').execute()).toEqual(before);
    expect(await ledgerTotals(t.db)).toEqual({ EUR: 0, USD: 0 });
  });

  it('a second credit of a level already paid, by any code path', async () => {
    const oneCredit = { code: '23505', constraint: 'ledger_entries_one_referral_credit' };
    const direct = { amount: 1000, currency: 'EUR', purchaseId: paidPurchase, beneficiaryId: chain.direct.id };

    // The movement a network payout records after the treasury's answer, written again.
    await expect(
      t.db.transaction().execute((trx) => recordMovement(trx, referralMovement(direct))),
    ).rejects.toMatchObject(oneCredit);
    // The in-database gateway asked to transfer the grand level again.
    const grand = {
      idempotencyKey: `${paidPurchase}:grand`,
      beneficiaryId: chain.grand.id,
      amount: 500,
      currency: 'EUR',
      purchaseId: paidPurchase,
    };
    const gateway = ledgerGateway;
    if (gateway.kind !== 'in-database') throw new Error('the ledger gateway transfers inside the database transaction');
    await expect(t.db.transaction().execute((trx) => gateway.transfer(trx, [grand]))).rejects.toMatchObject(oneCredit);
    // Another amount does not make it another credit.
    await expect(
      t.db.transaction().execute((trx) => recordMovement(trx, referralMovement({ ...direct, amount: 1 }))),
    ).rejects.toMatchObject(oneCredit);

    expect(await referralEarnings(t.db, chain.direct.id)).toBe(1000);
    expect(await referralEarnings(t.db, chain.grand.id)).toBe(500);
    // The guard is per purchase: the same referrer is credited for the buyer's next purchase.
    const next = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    await t.db
      .transaction()
      .execute((trx) => recordMovement(trx, referralMovement({ ...direct, purchaseId: next.id })));
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(2000);
  });
});
