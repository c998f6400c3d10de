import { randomBytes } from 'node:crypto';
import {
  type Content,
  confirmPurchase,
  createContent,
  createPurchase,
  createReferralCode,
  type Database,
  type Purchase,
  type ReferralCode,
  signUp,
  type User,
} from '@referrals/core';

export const uniqueHandle = (prefix = 'user') => `${prefix}_${randomBytes(5).toString('hex')}`;

export interface ReferralChain {
  grand: User;
  direct: User;
  buyer: User;
  creator: User;
  grandCode: ReferralCode;
  directCode: ReferralCode;
  content: Content;
}

export interface ChainOptions {
  platformFeeBps?: number;
  price?: number;
  currency?: string;
  directRateBps?: number;
  grandRateBps?: number;
  /** false: the buyer's referrer has no referrer of their own (direct level only). */
  withGrand?: boolean;
}

/** grand → direct → buyer, plus a creator with one piece of content, all through core. */
export async function seedReferralChain(db: Database, options: ChainOptions = {}): Promise<ReferralChain> {
  const fee = options.platformFeeBps ?? 3000;
  const grand = await signUp(db, { handle: uniqueHandle('grand') });
  const grandCode = await createReferralCode(db, { ownerId: grand.id }, fee);
  const direct = await signUp(db, {
    handle: uniqueHandle('direct'),
    referralCode: options.withGrand === false ? undefined : grandCode.code,
  });
  const directCode = await createReferralCode(
    db,
    { ownerId: direct.id, directRateBps: options.directRateBps, grandRateBps: options.grandRateBps },
    fee,
  );
  const buyer = await signUp(db, { handle: uniqueHandle('buyer'), referralCode: directCode.code });
  const creator = await signUp(db, { handle: uniqueHandle('creator') });
  const content = await createContent(db, {
    creatorId: creator.id,
    title: 'A guide to sourdough',
    price: options.price ?? 10_000,
    currency: options.currency ?? 'EUR',
  });
  return { grand, direct, buyer, creator, grandCode, directCode, content };
}

/** Creates and confirms one purchase; returns it as confirm answered. */
export async function confirmedPurchase(
  db: Database,
  buyerId: string,
  contentId: string,
  platformFeeBps = 3000,
): Promise<Purchase> {
  const { purchase } = await createPurchase(db, { buyerId, contentId });
  const { purchase: confirmed } = await confirmPurchase(
    db,
    { purchaseId: purchase.id, paymentReference: `pay_${randomBytes(6).toString('hex')}` },
    { platformFeeBps },
  );
  return confirmed;
}

/**
 * Forgets the payout gateway recorded for the database, as on a new deployment: the next process
 * to start records its own. For test files whose tests each run their own deployment with
 * different gateways; an operator switches with `--set-gateway` instead.
 */
export async function forgetPayoutGateway(db: Database): Promise<void> {
  await db.updateTable('payout_gateway_setting').set({ gateway: null, set_at: null, set_by: null }).execute();
}
