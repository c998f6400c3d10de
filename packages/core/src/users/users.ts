import type { Database } from '../db/database.ts';
import type { UserReferralRow, UserRow } from '../db/types.ts';
import { DomainError, isUniqueViolation, notFound } from '../errors.ts';

export interface User {
  id: string;
  handle: string;
  referral: { code: string; directReferrerId: string; grandReferrerId: string | null } | null;
  createdAt: string;
}

export function toUser(row: UserRow, referral: UserReferralRow | undefined): User {
  return {
    id: row.id,
    handle: row.handle,
    referral: referral
      ? {
          code: referral.code,
          directReferrerId: referral.direct_referrer_id,
          grandReferrerId: referral.grand_referrer_id,
        }
      : null,
    createdAt: row.created_at.toISOString(),
  };
}

export interface SignUpInput {
  handle: string;
  referralCode?: string | undefined;
}

/**
 * Signs a user up and, with a referral code, captures the chain once: the direct referrer is the
 * code's owner and the grand referrer is the owner's own direct referrer. The chain only ever points
 * at earlier users, so it cannot contain the user or a cycle.
 */
export async function signUp(db: Database, input: SignUpInput): Promise<User> {
  try {
    return await db.transaction().execute(async (trx) => {
      let chain: { code: string; direct: string; grand: string | null } | undefined;
      if (input.referralCode !== undefined) {
        const code = await trx
          .updateTable('referral_codes')
          .set((eb) => ({ signup_count: eb('signup_count', '+', 1) }))
          .where((eb) => eb(eb.fn('lower', ['code']), '=', input.referralCode!.toLowerCase()))
          .where('active', '=', true)
          .returning(['code', 'owner_id'])
          .executeTakeFirst();
        if (!code) {
          throw new DomainError(
            'unknown_referral_code',
            `referral code "${input.referralCode}" does not exist or is no longer active`,
          );
        }
        const ownerReferral = await trx
          .selectFrom('user_referrals')
          .select('direct_referrer_id')
          .where('user_id', '=', code.owner_id)
          .executeTakeFirst();
        chain = { code: code.code, direct: code.owner_id, grand: ownerReferral?.direct_referrer_id ?? null };
      }
      const user = await trx
        .insertInto('users')
        .values({ handle: input.handle })
        .returningAll()
        .executeTakeFirstOrThrow();
      let referral: UserReferralRow | undefined;
      if (chain) {
        referral = await trx
          .insertInto('user_referrals')
          .values({
            user_id: user.id,
            code: chain.code,
            direct_referrer_id: chain.direct,
            grand_referrer_id: chain.grand,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
      }
      return toUser(user, referral);
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new DomainError('conflict', `handle "${input.handle}" is already taken`);
    throw error;
  }
}

export async function getUser(db: Database, id: string): Promise<User> {
  const user = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  if (!user) throw notFound('user', id);
  const referral = await db.selectFrom('user_referrals').selectAll().where('user_id', '=', id).executeTakeFirst();
  return toUser(user, referral);
}

/** Handles of the given users, for showing people by name; unknown ids are left out. */
export async function handlesOf(db: Database, ids: readonly string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom('users')
    .select(['id', 'handle'])
    .where('id', 'in', [...new Set(ids)])
    .execute();
  return new Map(rows.map((r) => [r.id, r.handle]));
}
