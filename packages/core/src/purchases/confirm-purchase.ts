import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Database } from '../db/database.ts';
import { DomainError, notFound } from '../errors.ts';
import type { PurchaseRow } from '../db/types.ts';
import { BPS_DENOMINATOR } from '../money.ts';
import { REFERRAL_PAYOUT_TOPIC, wakeRelays } from '../outbox/outbox.ts';
import { type Purchase, toPurchase } from './purchase.ts';

export interface ConfirmPurchaseInput {
  purchaseId: string;
  paymentReference: string;
}

export interface ConfirmPurchaseResult {
  purchase: Purchase;
  /** True when the purchase was already confirmed with this payment reference. */
  replayed: boolean;
}

/**
 * Confirms a paid purchase. One statement — atomic on its own, so no transaction is held open
 * across round trips — marks it confirmed, records the treasury distribution and decides the
 * referral payout: `not_applicable` (free content, buyer without a referrer) or `queued` with an
 * outbox row the worker turns into payouts. Nothing on this path waits for a payout. Confirming
 * again with the same payment reference returns the stored result.
 */
export async function confirmPurchase(
  db: Database,
  input: ConfirmPurchaseInput,
  options: { platformFeeBps: number },
): Promise<ConfirmPurchaseResult> {
  if (
    !Number.isInteger(options.platformFeeBps) ||
    options.platformFeeBps < 0 ||
    options.platformFeeBps > BPS_DENOMINATOR
  ) {
    throw new RangeError(`platform fee must be 0..${BPS_DENOMINATOR} bps, got ${options.platformFeeBps}`);
  }
  // The fee, the creator's share and the payout decision are computed inside the statement from the
  // purchase, its content and the buyer's chain (all fixed once the purchase exists), so a confirm is
  // one round trip instead of a read and then a write. Integer division of non-negative bigints
  // floors, as money.applyBps does. Two concurrent confirms: the second one's update re-checks
  // `status = 'pending'` on the row the first committed, updates nothing and answers as a replay.
  const { rows } = await sql<PurchaseRow>`
    with target as (
      select p.id, c.creator_id,
             p.price * ${options.platformFeeBps}::bigint / ${BPS_DENOMINATOR} as fee,
             case when p.price = 0 then 'free_content'
                  when r.direct_referrer_id is null then 'no_referrer' end as reason
        from purchases p
        join content c on c.id = p.content_id
        left join user_referrals r on r.user_id = p.buyer_id
       where p.id = ${input.purchaseId} and p.status = 'pending'
    ),
    confirmed as (
      update purchases p set
        status = 'confirmed',
        payment_reference = ${input.paymentReference},
        confirmed_at = now(),
        platform_fee = t.fee,
        referral_payout_status = case when t.reason is null then 'queued' else 'not_applicable' end,
        referral_payout_reason = t.reason,
        referral_payout_queued_at = case when t.reason is null then now() end,
        referral_payout_completed_at = case when t.reason is null then null else now() end
      from target t
      where p.id = t.id and p.status = 'pending'
      returning p.*, t.creator_id as ledger_creator_id
    ),
    ledger as (
      insert into ledger_entries (transaction_id, account, user_id, amount, currency, purchase_id)
      select ${randomUUID()}::uuid, v.account, v.user_id, v.amount, c.currency, c.id
        from confirmed c
        cross join lateral (values
          ('buyer_payment_clearing', null::uuid, -c.price),
          ('creator_earnings', c.ledger_creator_id, c.price - c.platform_fee),
          ('platform_treasury', null::uuid, c.platform_fee)
        ) v (account, user_id, amount)
       where v.amount <> 0
    ),
    outbox_row as (
      insert into outbox (topic, aggregate_id, payload)
      select ${REFERRAL_PAYOUT_TOPIC}, id, jsonb_build_object('purchaseId', id)
        from confirmed where referral_payout_status = 'queued'
    ),
    event as (
      insert into referral_payout_events (purchase_id, from_status, to_status, actor, attempt)
      select id, null, referral_payout_status, 'api', 0 from confirmed
    )
    select * from confirmed`.execute(db);
  const confirmed = rows[0];
  if (confirmed) {
    // The purchase is committed; the answer does not wait for the wake-up, and a failed one must
    // not turn it into an error: the relay's poll picks the row up within OUTBOX_POLL_INTERVAL_MS.
    if (confirmed.referral_payout_status === 'queued') void wakeRelays(db);
    return { purchase: toPurchase(confirmed), replayed: false };
  }

  // Not pending (or absent): a replay of an earlier confirm, a conflict, or an unknown purchase.
  const row = await db.selectFrom('purchases').selectAll().where('id', '=', input.purchaseId).executeTakeFirst();
  if (!row) throw notFound('purchase', input.purchaseId);
  if (row.payment_reference !== input.paymentReference) {
    throw new DomainError(
      'conflict',
      `purchase ${input.purchaseId} is already confirmed with another payment reference`,
    );
  }
  return { purchase: toPurchase(row), replayed: true };
}
