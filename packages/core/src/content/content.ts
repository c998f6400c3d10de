import type { Database } from '../db/database.ts';
import type { ContentRow } from '../db/types.ts';
import { DomainError, isForeignKeyViolation } from '../errors.ts';

export interface Content {
  id: string;
  creatorId: string;
  title: string;
  price: number;
  currency: string;
  createdAt: string;
}

export const toContent = (row: ContentRow): Content => ({
  id: row.id,
  creatorId: row.creator_id,
  title: row.title,
  price: row.price,
  currency: row.currency,
  createdAt: row.created_at.toISOString(),
});

export interface CreateContentInput {
  creatorId: string;
  title: string;
  price: number;
  currency: string;
}

export async function createContent(db: Database, input: CreateContentInput): Promise<Content> {
  try {
    const row = await db
      .insertInto('content')
      .values({ creator_id: input.creatorId, title: input.title, price: input.price, currency: input.currency })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toContent(row);
  } catch (error) {
    if (isForeignKeyViolation(error)) throw new DomainError('not_found', `user ${input.creatorId} not found`);
    throw error;
  }
}
