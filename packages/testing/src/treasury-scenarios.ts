import { sql } from 'kysely';
import { type Database, type PayoutContext, processReferralPayouts } from '@referrals/core';
import { confirmedPurchase, type ReferralChain, seedReferralChain } from './factories.ts';
import type { AcceptedTransfer, FakeTreasury } from './fake-treasury.ts';

/** A confirmed purchase of 100.00 EUR with a direct and a grand referrer, queued for payout. */
export async function queuedReferralPurchase(db: Database): Promise<string> {
  const chain = await seedReferralChain(db, { price: 10_000 });
  return (await confirmedPurchase(db, chain.buyer.id, chain.content.id)).id;
}

/** A purchase whose two levels were paid through `ctx`'s gateway and recorded: 10.00 and 5.00 EUR. */
export async function paidReferralPurchase(ctx: PayoutContext): Promise<string> {
  const id = await queuedReferralPurchase(ctx.db);
  const outcome = await processReferralPayouts(ctx, id, { actor: 'worker' });
  if (outcome.status !== 'completed') throw new Error(`purchase ${id} ended ${outcome.status}, not completed`);
  return id;
}

/**
 * A purchase left `failed` although the treasury made both transfers: every answer was lost, the
 * worker's last retry included. Reconciliation finds it as two unrecorded transfers.
 */
export async function failedAfterLostAnswers(ctx: PayoutContext, treasury: FakeTreasury): Promise<string> {
  const id = await queuedReferralPurchase(ctx.db);
  treasury.setMode({ kind: 'drop-response' });
  try {
    const result = await processReferralPayouts(ctx, id, { actor: 'worker', finalAttempt: true });
    if (result.status !== 'failed')
      throw new Error(`purchase ${id} ended ${result.status} although every answer was dropped`);
  } finally {
    treasury.setMode({ kind: 'succeed' });
  }
  return id;
}

export type SeededTransfer = Omit<AcceptedTransfer, 'createdAt'>;

/**
 * `count` confirmed purchases of the chain's content whose two levels are recorded paid, written in
 * a few statements for windows of many thousand levels; returns the transfers a treasury would hold
 * for them (direct 10 %, grand 5 % of the price, the factory's default rates).
 */
export async function seedPaidPurchases(db: Database, chain: ReferralChain, count: number): Promise<SeededTransfer[]> {
  const price = chain.content.price;
  const direct = Math.floor((price * chain.directCode.directRateBps) / 10_000);
  const grand = Math.floor((price * chain.directCode.grandRateBps) / 10_000);
  const { rows } = await sql<{ id: string }>`
    insert into purchases (buyer_id, content_id, price, currency, status, payment_reference, confirmed_at, platform_fee,
                           referral_payout_status, referral_payout_attempts, referral_payout_queued_at, referral_payout_completed_at)
    select ${chain.buyer.id}, ${chain.content.id}, ${price}, ${chain.content.currency}, 'confirmed', 'pay_bulk_' || n, now(),
           ${Math.floor((price * 3000) / 10_000)}, 'completed', 1, now(), now()
      from generate_series(1, ${count}) as n
    returning id`.execute(db);
  const transfers = rows.flatMap(({ id }) => [
    {
      idempotencyKey: `${id}:direct`,
      reference: `tr_${id.slice(0, 8)}_d`,
      beneficiaryId: chain.direct.id,
      amount: direct,
      currency: chain.content.currency,
    },
    {
      idempotencyKey: `${id}:grand`,
      reference: `tr_${id.slice(0, 8)}_g`,
      beneficiaryId: chain.grand.id,
      amount: grand,
      currency: chain.content.currency,
    },
  ]);
  await sql`
    insert into referral_payouts (purchase_id, level, beneficiary_id, rate_bps, amount, currency, status, reference, paid_at, gateway)
    select split_part(t.key, ':', 1)::uuid, split_part(t.key, ':', 2), t.beneficiary, case split_part(t.key, ':', 2) when 'direct' then ${chain.directCode.directRateBps}::int else ${chain.directCode.grandRateBps}::int end,
           t.amount, ${chain.content.currency}, 'paid', t.reference, now(), 'http'
      from unnest(${transfers.map((t) => t.idempotencyKey)}::text[], ${transfers.map((t) => t.beneficiaryId)}::uuid[],
                  ${transfers.map((t) => t.amount)}::bigint[], ${transfers.map((t) => t.reference)}::text[]) as t(key, beneficiary, amount, reference)`.execute(
    db,
  );
  return transfers;
}
