import { sql } from 'kysely';
import type { Database } from '@referrals/core';
import type { AcceptedTransfer } from './fake-treasury.ts';
import type { ReferralChain } from './factories.ts';

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
    { idempotencyKey: `${id}:direct`, reference: `tr_${id.slice(0, 8)}_d`, beneficiaryId: chain.direct.id, amount: direct, currency: chain.content.currency },
    { idempotencyKey: `${id}:grand`, reference: `tr_${id.slice(0, 8)}_g`, beneficiaryId: chain.grand.id, amount: grand, currency: chain.content.currency },
  ]);
  await sql`
    insert into referral_payouts (purchase_id, level, beneficiary_id, rate_bps, amount, currency, status, reference, paid_at)
    select split_part(t.key, ':', 1)::uuid, split_part(t.key, ':', 2), t.beneficiary, case split_part(t.key, ':', 2) when 'direct' then ${chain.directCode.directRateBps}::int else ${chain.directCode.grandRateBps}::int end,
           t.amount, ${chain.content.currency}, 'paid', t.reference, now()
      from unnest(${transfers.map((t) => t.idempotencyKey)}::text[], ${transfers.map((t) => t.beneficiaryId)}::uuid[],
                  ${transfers.map((t) => t.amount)}::bigint[], ${transfers.map((t) => t.reference)}::text[]) as t(key, beneficiary, amount, reference)`.execute(db);
  return transfers;
}
