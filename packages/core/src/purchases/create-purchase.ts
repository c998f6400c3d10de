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
  /** The HTTP status of the answer: 201, or the status first answered under the idempotency key. */
  status: number;
  /** The purchase as created, or as first answered under the idempotency key. */
  purchase: Purchase;
  /** True when an earlier request with the same idempotency key created it. */
  replayed: boolean;
}

const CREATED = 201;

/** The request as its key remembers it: ids compare case-insensitively, as Postgres's uuid does. */
const fingerprint = (input: CreatePurchaseInput) =>
  createHash('sha256')
    .update(JSON.stringify([input.buyerId.toLowerCase(), input.contentId.toLowerCase()]))
    .digest('hex');

/** Thrown inside the creating transaction when another request committed the same key first. */
class KeyTakenMeanwhile extends Error {}

/**
 * Creates a pending purchase with a snapshot of the content's price. An idempotency key is global
 * to the service and works as Stripe's does: the first response given under the key (status and
 * body) is stored with the purchase, in its transaction, and a retry with the same request gets that
 * response again, even after the purchase has moved on; the same key with another request is
 * refused. Concurrent duplicates meet at the key's primary key, so exactly one purchase is created.
 */
export async function createPurchase(db: Database, input: CreatePurchaseInput): Promise<CreatePurchaseResult> {
  const key = input.idempotencyKey;
  if (key === undefined)
    return { status: CREATED, purchase: await insertPurchase(db, input, null, null), replayed: false };

  const print = fingerprint(input);
  const earlier = await replay(db, key, print);
  if (earlier) return earlier;
  try {
    return await db.transaction().execute(async (trx) => {
      const purchase = await insertPurchase(trx, input, key, print);
      const stored = await trx
        .insertInto('idempotency_keys')
        .values({ key, fingerprint: print, response_status: CREATED, response_body: JSON.stringify(purchase) })
        .onConflict((oc) => oc.column('key').doNothing())
        .returning('key')
        .executeTakeFirst();
      if (!stored) throw new KeyTakenMeanwhile();
      return { status: CREATED, purchase, replayed: false };
    });
  } catch (error) {
    if (!(error instanceof KeyTakenMeanwhile)) throw error;
  }
  const winner = await replay(db, key, print);
  if (!winner) throw new Error(`idempotency key ${key} was taken by a transaction that is gone`);
  return winner;
}

async function insertPurchase(
  db: Database,
  input: CreatePurchaseInput,
  key: string | null,
  print: string | null,
): Promise<Purchase> {
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
      .returningAll()
      .executeTakeFirst();
  } catch (error) {
    if (isForeignKeyViolation(error)) throw new DomainError('not_found', `buyer ${input.buyerId} not found`);
    throw error;
  }
  if (!row) throw new DomainError('not_found', `content ${input.contentId} not found`);
  return toPurchase(row);
}

async function replay(db: Database, key: string, print: string): Promise<CreatePurchaseResult | undefined> {
  const row = await db.selectFrom('idempotency_keys').selectAll().where('key', '=', key).executeTakeFirst();
  if (!row) return undefined;
  if (row.fingerprint !== print) {
    throw new DomainError(
      'idempotency_key_reused',
      'this Idempotency-Key was already used with a different request body; use a new key for a new purchase',
    );
  }
  return { status: row.response_status, purchase: row.response_body as Purchase, replayed: true };
}

/**
 * Forgets idempotency keys older than `ttlHours` (IDEMPOTENCY_KEY_TTL_HOURS), in batches; such a key
 * may then create a new purchase. Returns how many went.
 */
export async function pruneIdempotencyKeys(db: Database, ttlHours: number, batchSize = 5000): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await db
      .deleteFrom('idempotency_keys')
      .where('key', 'in', (eb) =>
        eb
          .selectFrom('idempotency_keys')
          .select('key')
          .where('created_at', '<', sql<Date>`now() - make_interval(hours => ${ttlHours})`)
          .orderBy('created_at')
          .limit(batchSize),
      )
      .executeTakeFirst();
    const deleted = Number(result.numDeletedRows);
    total += deleted;
    if (deleted < batchSize) return total;
  }
}
