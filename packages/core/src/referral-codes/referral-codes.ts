import { randomBytes } from 'node:crypto';
import type { Database } from '../db/database.ts';
import type { ReferralCodeRow } from '../db/types.ts';
import { DomainError, isForeignKeyViolation, isUniqueViolation } from '../errors.ts';

export const DEFAULT_DIRECT_RATE_BPS = 1000;
export const DEFAULT_GRAND_RATE_BPS = 500;

export interface ReferralCode {
  code: string;
  ownerId: string;
  directRateBps: number;
  grandRateBps: number;
  active: boolean;
  createdAt: string;
}

export const toReferralCode = (row: ReferralCodeRow): ReferralCode => ({
  code: row.code,
  ownerId: row.owner_id,
  directRateBps: row.direct_rate_bps,
  grandRateBps: row.grand_rate_bps,
  active: row.active,
  createdAt: row.created_at.toISOString(),
});

export interface CreateReferralCodeInput {
  ownerId: string;
  code?: string | undefined;
  directRateBps?: number | undefined;
  grandRateBps?: number | undefined;
}

// No 0/O or 1/I: codes are read aloud and typed from screenshots.
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

function generateCode(): string {
  return Array.from(randomBytes(8), (b) => ALPHABET[b % ALPHABET.length]).join('');
}

/**
 * Creates a referral code. Payouts are paid out of the platform fee, so a code's two rates together
 * may never exceed it.
 */
export async function createReferralCode(
  db: Database,
  input: CreateReferralCodeInput,
  platformFeeBps: number,
): Promise<ReferralCode> {
  const direct = input.directRateBps ?? DEFAULT_DIRECT_RATE_BPS;
  const grand = input.grandRateBps ?? DEFAULT_GRAND_RATE_BPS;
  if (direct + grand > platformFeeBps) {
    throw new DomainError(
      'validation_failed',
      `directRateBps + grandRateBps (${direct + grand}) may not exceed the platform fee of ${platformFeeBps} bps`,
    );
  }
  // A generated code collides with odds of 1 in 32^8 per existing code; retry a few times anyway.
  for (let attempt = 0; ; attempt++) {
    const code = input.code ?? generateCode();
    try {
      const row = await db
        .insertInto('referral_codes')
        .values({ code, owner_id: input.ownerId, direct_rate_bps: direct, grand_rate_bps: grand })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toReferralCode(row);
    } catch (error) {
      if (isForeignKeyViolation(error)) throw new DomainError('not_found', `user ${input.ownerId} not found`);
      if (isUniqueViolation(error)) {
        if (input.code === undefined && attempt < 3) continue;
        throw new DomainError('conflict', `referral code "${code}" already exists`);
      }
      throw error;
    }
  }
}

export async function setReferralCodeActive(db: Database, code: string, active: boolean): Promise<ReferralCode> {
  const row = await db
    .updateTable('referral_codes')
    .set({ active })
    .where((eb) => eb(eb.fn('lower', ['code']), '=', code.toLowerCase()))
    .returningAll()
    .executeTakeFirst();
  if (!row) throw new DomainError('not_found', `referral code "${code}" not found`);
  return toReferralCode(row);
}
