import { sql } from 'kysely';
import type { Database } from '../db/database.ts';
import type { Actor, PayoutLevel } from '../db/types.ts';
import { DomainError, notFound } from '../errors.ts';

export const WRITTEN_OFF = 'written_off';
export const MAX_NOTE_LENGTH = 1000;
export const MAX_OPERATOR_LENGTH = 64;

/** Who writes off and why: the entry point, the person when it knows one, and their reason. */
export interface WriteOffAction {
  actor: Actor;
  operator?: string | null | undefined;
  note: string;
}

export interface WriteOffResult {
  purchaseId: string;
  /** Levels that will now never be paid. Paid levels are not listed: they stay paid. */
  writtenOff: PayoutLevel[];
}

/** The reason an operator gives: one to 1000 characters of text, not only blanks, no control characters. */
export function validateNote(note: string): string {
  const trimmed = note.trim();
  if (trimmed === '') throw new DomainError('validation_failed', 'a reason is required to write off referral payouts');
  if (trimmed.length > MAX_NOTE_LENGTH)
    throw new DomainError('validation_failed', `the reason is longer than ${MAX_NOTE_LENGTH} characters`);
  // Tabs and line breaks are fine in a reason; NUL and other control characters are not (Postgres
  // text refuses NUL, and logs and terminals misrender the rest).
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/.test(trimmed)) {
    throw new DomainError('validation_failed', 'the reason contains control characters');
  }
  return trimmed;
}

/**
 * Gives up on a `failed` purchase's unpaid referral payouts: the purchase becomes `not_applicable`
 * with reason `written_off`, its unpaid levels `written_off`, and its history records who did it and
 * why. Levels already paid are never touched: that money moved. Anything but `failed` is a conflict,
 * and so is a transfer in flight (a live lease): its outcome must be recorded first.
 */
export async function writeOffReferralPayouts(
  db: Database,
  purchaseId: string,
  action: WriteOffAction,
): Promise<WriteOffResult> {
  const note = validateNote(action.note);
  return db.transaction().execute(async (trx) => {
    const purchase = await trx
      .selectFrom('purchases')
      .select([
        'referral_payout_status as status',
        'referral_payout_attempts as attempts',
        sql<boolean>`coalesce(referral_payout_lease_until > now(), false)`.as('leaseActive'),
      ])
      .where('id', '=', purchaseId)
      .forUpdate()
      .executeTakeFirst();
    if (!purchase) throw notFound('purchase', purchaseId);
    if (purchase.status !== 'failed') {
      throw new DomainError(
        'conflict',
        `only failed referral payouts can be written off; purchase ${purchaseId} is ${purchase.status ?? 'not confirmed'}`,
      );
    }
    if (purchase.leaseActive) {
      throw new DomainError(
        'conflict',
        `a transfer for purchase ${purchaseId} is in flight; write it off once it has finished`,
      );
    }
    const levels = await trx
      .updateTable('referral_payouts')
      .set({ status: 'written_off', updated_at: sql`now()` })
      .where('purchase_id', '=', purchaseId)
      .where('status', '<>', 'paid')
      .returning('level')
      .execute();
    await trx
      .with('changed', (q) =>
        q
          .updateTable('purchases')
          .set({
            referral_payout_status: 'not_applicable',
            referral_payout_reason: WRITTEN_OFF,
            referral_payout_completed_at: sql`now()`,
            referral_payout_lease_owner: null,
            referral_payout_lease_until: null,
          })
          .where('id', '=', purchaseId)
          .returning('id'),
      )
      .insertInto('referral_payout_events')
      .values({
        purchase_id: purchaseId,
        from_status: 'failed',
        to_status: 'not_applicable',
        actor: action.actor,
        operator: action.operator ?? null,
        attempt: purchase.attempts,
        note,
      })
      .execute();
    return { purchaseId, writtenOff: levels.map((l) => l.level).sort() };
  });
}
