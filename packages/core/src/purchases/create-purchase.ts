import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Database } from '../db/database.ts';
import { DomainError, isForeignKeyViolation } from '../errors.ts';
import { type Purchase, toPurchase } from './purchase.ts';

export interface CreatePurchaseInput {
  buyerId: string;
  contentId: string;
  idempotencyKey?: string | undefined;
}

export interface CreatePurchaseResult {
  purchase: Purchase;
  /** True when an earlier request with the same idempotency key created it. */
  replayed: boolean;
}

const fingerprint = (input: CreatePurchaseInput) =>
  createHash('sha256').update(JSON.stringify([input.buyerId, input.contentId])).digest('hex');

/**
 * Creates a pending purchase with a snapshot of the content's price. An idempotency key is global
 * to the service: the same key with the same body returns the purchase it created, the same key
 * with another body is refused. Concurrent duplicates meet at the unique index, so exactly one wins.
 */
export async function createPurchase(db: Database, input: CreatePurchaseInput): Promise<CreatePurchaseResult> {
  const key = input.idempotencyKey ?? null;
  const print = key === null ? null : fingerprint(input);

  let row;
  try {
    // One statement: the price snapshot comes straight from the content row.
    row = await db
      .insertInto('purchases')
      .columns(['buyer_id', 'content_id', 'price', 'currency', 'idempotency_key', 'idempotency_fingerprint'])
      .expression((eb) =>
        eb
          .selectFrom('content')
          .select([
            sql<string>`${input.buyerId}::uuid`.as('buyer_id'),
            'id',
            'price',
            'currency',
            sql<string | null>`${key}::text`.as('idempotency_key'),
            sql<string | null>`${print}::text`.as('idempotency_fingerprint'),
          ])
          .where('id', '=', input.contentId),
      )
      .onConflict((oc) => oc.column('idempotency_key').where('idempotency_key', 'is not', null).doNothing())
      .returningAll()
      .executeTakeFirst();
  } catch (error) {
    if (isForeignKeyViolation(error)) {
      if (key !== null) {
        const existing = await findByIdempotencyKey(db, key, print!);
        if (existing) return existing;
      }
      throw new DomainError('not_found', `buyer ${input.buyerId} not found`);
    }
    throw error;
  }
  if (row) return { purchase: toPurchase(row), replayed: false };

  // Either the content does not exist or a request with the same key got there first.
  if (key !== null) {
    const existing = await findByIdempotencyKey(db, key, print!);
    if (existing) return existing;
  }
  throw new DomainError('not_found', `content ${input.contentId} not found`);
}

async function findByIdempotencyKey(db: Database, key: string, print: string): Promise<CreatePurchaseResult | undefined> {
  const row = await db.selectFrom('purchases').selectAll().where('idempotency_key', '=', key).executeTakeFirst();
  if (!row) return undefined;
  if (row.idempotency_fingerprint !== print) {
    throw new DomainError(
      'idempotency_key_reused',
      'this Idempotency-Key was already used with a different request body; use a new key for a new purchase',
    );
  }
  return { purchase: toPurchase(row), replayed: true };
}
