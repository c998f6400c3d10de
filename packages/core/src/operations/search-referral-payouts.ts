import { type Expression, type SqlBool, sql } from 'kysely';
import type { Database } from '../db/database.ts';
import type { ReferralPayoutStatus } from '../db/types.ts';
import { DomainError } from '../errors.ts';
import { decodeKeysetCursor, keysetPage, keysetTimestamp, pastKeyset, UUID_PATTERN } from '../keyset-cursor.ts';

export const MAX_SEARCH_PAGE = 200;
export const MAX_SEARCH_TEXT = 200;

export interface PayoutSearch {
  status?: ReferralPayoutStatus | undefined;
  /** A purchase, buyer or beneficiary id; a buyer's or beneficiary's handle; or words of an error. */
  q?: string | undefined;
  /** Confirmed at or after. */
  from?: Date | undefined;
  /** Confirmed before. */
  to?: Date | undefined;
  limit: number;
  cursor?: string | undefined;
}

export interface PayoutSearchItem {
  purchaseId: string;
  buyerId: string;
  buyerHandle: string;
  contentId: string;
  price: number;
  currency: string;
  status: ReferralPayoutStatus;
  reason: string | null;
  attempts: number;
  lastError: string | null;
  confirmedAt: string;
}

export interface PayoutSearchPage {
  items: PayoutSearchItem[];
  nextCursor: string | null;
}

const DATE_OR_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** A search bound as operators type it: `2026-11-28` (UTC midnight) or an ISO-8601 time with offset. */
export function parseSearchTime(name: string, text: string): Date {
  const date = DATE_OR_TIME.test(text) ? new Date(text.length === 10 ? `${text}T00:00:00Z` : text) : undefined;
  // Date accepts 2026-02-31 by rolling over; a bound that does not read back as written is refused.
  if (!date || Number.isNaN(date.getTime()) || (text.length === 10 && date.toISOString().slice(0, 10) !== text)) {
    throw new DomainError(
      'validation_failed',
      `"${name}" must be a date (2026-11-28) or an ISO-8601 time, got "${text.slice(0, 40)}"`,
    );
  }
  return date;
}

/** LIKE pattern matching `text` anywhere, with the pattern's own wildcards taken literally. */
const containing = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Confirmed purchases and their referral payout state, newest confirmation first, filtered by status,
 * confirmation time and free text. Keyset pagination on (confirmed_at, id): purchases confirmed
 * while an operator pages sort before the cursor and never shift later pages.
 */
export async function searchReferralPayouts(db: Database, search: PayoutSearch): Promise<PayoutSearchPage> {
  if (!Number.isInteger(search.limit) || search.limit < 1 || search.limit > MAX_SEARCH_PAGE) {
    throw new DomainError('validation_failed', `limit must be between 1 and ${MAX_SEARCH_PAGE}, got ${search.limit}`);
  }
  const q = search.q?.trim().replace(/^@/, '');
  if (q !== undefined && q.length > MAX_SEARCH_TEXT) {
    throw new DomainError('validation_failed', `search text is longer than ${MAX_SEARCH_TEXT} characters`);
  }
  if (q?.includes('\u0000')) throw new DomainError('validation_failed', 'search text contains a NUL character');
  if (search.from && search.to && search.from >= search.to) {
    throw new DomainError('validation_failed', '"from" must be before "to"');
  }
  const after = search.cursor === undefined ? undefined : decodeKeysetCursor(search.cursor);

  const rows = await db
    .selectFrom('purchases as p')
    .innerJoin('users as u', 'u.id', 'p.buyer_id')
    .select([
      'p.id',
      'p.buyer_id',
      'u.handle as buyer_handle',
      'p.content_id',
      'p.price',
      'p.currency',
      'p.referral_payout_status',
      'p.referral_payout_reason',
      'p.referral_payout_attempts',
      'p.referral_payout_last_error',
      'p.confirmed_at',
      keysetTimestamp('p.confirmed_at').as('cursor_at'),
    ])
    .where('p.confirmed_at', 'is not', null)
    .$if(search.status !== undefined, (qb) => qb.where('p.referral_payout_status', '=', search.status!))
    .$if(search.from !== undefined, (qb) => qb.where('p.confirmed_at', '>=', search.from!))
    .$if(search.to !== undefined, (qb) => qb.where('p.confirmed_at', '<', search.to!))
    .$if(q !== undefined && q !== '', (qb) =>
      qb.where((eb): Expression<SqlBool> => {
        const id = UUID_PATTERN.test(q!) ? q!.toLowerCase() : undefined;
        const lower = q!.toLowerCase();
        const pattern = containing(q!);
        const beneficiary = eb.exists(
          eb
            .selectFrom('referral_payouts as r')
            .innerJoin('users as b', 'b.id', 'r.beneficiary_id')
            .select(sql`1`.as('one'))
            .whereRef('r.purchase_id', '=', 'p.id')
            .where((inner) =>
              id !== undefined
                ? inner('r.beneficiary_id', '=', id)
                : inner.or([inner(sql`lower(b.handle)`, '=', lower), inner('r.error', 'ilike', pattern)]),
            ),
        );
        if (id !== undefined) return eb.or([eb('p.id', '=', id), eb('p.buyer_id', '=', id), beneficiary]);
        return eb.or([
          eb(sql`lower(u.handle)`, '=', lower),
          beneficiary,
          eb('p.referral_payout_last_error', 'ilike', pattern),
        ]);
      }),
    )
    .$if(after !== undefined, (qb) => qb.where(pastKeyset({ at: 'p.confirmed_at', id: 'p.id' }, after!, 'newest')))
    .orderBy('p.confirmed_at', 'desc')
    .orderBy('p.id', 'desc')
    .limit(search.limit + 1)
    .execute();

  const { page, nextCursor } = keysetPage(rows, search.limit);
  return {
    items: page.map((r) => ({
      purchaseId: r.id,
      buyerId: r.buyer_id,
      buyerHandle: r.buyer_handle,
      contentId: r.content_id,
      price: r.price,
      currency: r.currency,
      status: r.referral_payout_status!,
      reason: r.referral_payout_reason,
      attempts: r.referral_payout_attempts,
      lastError: r.referral_payout_last_error,
      confirmedAt: r.confirmed_at!.toISOString(),
    })),
    nextCursor,
  };
}
