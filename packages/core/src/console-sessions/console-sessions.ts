import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Database } from '../db/database.ts';

/** A session id as the cookie carries it: 32 random bytes, base64url. */
export const CONSOLE_SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

/** Only the hash is stored: a copy of the table is no way in. */
const hashOf = (id: string) => createHash('sha256').update(id, 'utf8').digest('hex');

export interface ConsoleSessionRecord {
  /** The ADMIN_TOKENS name that signed in; null for the shared ADMIN_API_TOKEN. */
  operator: string | null;
  expiresAt: Date;
}

/**
 * Records a new session for `ttlMs` (by the database clock) and returns its id, which only the
 * caller ever sees. Expired sessions are deleted first, so the table holds at most the sessions
 * started within one lifetime.
 */
export async function startConsoleSession(
  db: Database,
  session: { operator: string | null; ttlMs: number },
): Promise<{ id: string; expiresAt: Date }> {
  const id = randomBytes(32).toString('base64url');
  await db.deleteFrom('console_sessions').where('expires_at', '<=', sql<Date>`now()`).execute();
  const row = await db
    .insertInto('console_sessions')
    .values({
      id_hash: hashOf(id),
      operator: session.operator,
      expires_at: sql<Date>`now() + ${`${session.ttlMs} milliseconds`}::interval`,
    })
    .returning('expires_at')
    .executeTakeFirstOrThrow();
  return { id, expiresAt: row.expires_at };
}

/** The session with this id, while it has not ended or expired. */
export async function findConsoleSession(db: Database, id: string): Promise<ConsoleSessionRecord | undefined> {
  if (!CONSOLE_SESSION_ID.test(id)) return undefined;
  const row = await db
    .selectFrom('console_sessions')
    .select(['operator', 'expires_at'])
    .where('id_hash', '=', hashOf(id))
    .where('expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst();
  return row && { operator: row.operator, expiresAt: row.expires_at };
}

/** Ends the session: its id is refused from now on, wherever a copy of the cookie is. */
export async function endConsoleSession(db: Database, id: string): Promise<boolean> {
  if (!CONSOLE_SESSION_ID.test(id)) return false;
  const result = await db.deleteFrom('console_sessions').where('id_hash', '=', hashOf(id)).executeTakeFirst();
  return result.numDeletedRows > 0n;
}
