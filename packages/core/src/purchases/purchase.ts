import type { Database } from '../db/database.ts';
import type { PurchaseRow, PurchaseStatus, ReferralPayoutStatus } from '../db/types.ts';
import { notFound } from '../errors.ts';

export interface Purchase {
  id: string;
  buyerId: string;
  contentId: string;
  price: number;
  currency: string;
  status: PurchaseStatus;
  paymentReference: string | null;
  referralPayoutStatus: ReferralPayoutStatus | null;
  referralPayoutReason: string | null;
  createdAt: string;
  confirmedAt: string | null;
}

export const toPurchase = (row: PurchaseRow): Purchase => ({
  id: row.id,
  buyerId: row.buyer_id,
  contentId: row.content_id,
  price: row.price,
  currency: row.currency,
  status: row.status,
  paymentReference: row.payment_reference,
  referralPayoutStatus: row.referral_payout_status,
  referralPayoutReason: row.referral_payout_reason,
  createdAt: row.created_at.toISOString(),
  confirmedAt: row.confirmed_at?.toISOString() ?? null,
});

export async function getPurchase(db: Database, id: string): Promise<Purchase> {
  const row = await db.selectFrom('purchases').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('purchase', id);
  return toPurchase(row);
}
