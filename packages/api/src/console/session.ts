import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Database, endConsoleSession, findConsoleSession, startConsoleSession } from '@referrals/core';
import type { AdminTokens } from '../admin-auth.ts';

export const SESSION_COOKIE = 'referrals_console';
export const SESSION_HOURS = 8;
const SESSION_MS = SESSION_HOURS * 3_600_000;

/** A signed-in operator: the token's name (null for ADMIN_API_TOKEN) and when the session ends. */
export interface ConsoleSession {
  operator: string | null;
  expiresAt: number;
}

/**
 * Console sessions. The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's
 * page sends it), Secure over https, limited to /console, and signed with a key derived from the
 * admin tokens; it carries only a random id. The session itself is a row in Postgres
 * (console_sessions), so it ends for good when the operator signs out or SESSION_HOURS pass — a
 * copied cookie is refused from then on — and every API replica sees the same sessions.
 */
export class ConsoleSessions {
  readonly #tokens: AdminTokens;
  readonly #db: Database;
  /** The id each request's session was read from, kept off the session object the templates see. */
  readonly #ids = new WeakMap<FastifyRequest, string>();

  constructor(tokens: AdminTokens, db: Database) {
    this.#tokens = tokens;
    this.#db = db;
  }

  /**
   * The session of this request: its cookie is signed by us, its row exists and has not expired,
   * and the token it started with is still accepted.
   */
  async read(request: FastifyRequest): Promise<ConsoleSession | undefined> {
    const raw = request.cookies[SESSION_COOKIE];
    if (raw === undefined) return undefined;
    const unsigned = request.unsignCookie(raw);
    if (!unsigned.valid || unsigned.value === null) return undefined;
    const found = await findConsoleSession(this.#db, unsigned.value);
    if (!found || !this.#tokens.has(found.operator)) return undefined;
    this.#ids.set(request, unsigned.value);
    return { operator: found.operator, expiresAt: found.expiresAt.getTime() };
  }

  async start(request: FastifyRequest, reply: FastifyReply, operator: string | null): Promise<void> {
    const { id } = await startConsoleSession(this.#db, { operator, ttlMs: SESSION_MS });
    reply.setCookie(SESSION_COOKIE, id, { ...cookieOptions(request), signed: true, maxAge: SESSION_MS / 1000 });
  }

  /** Ends this request's session in the database, then clears the cookie. */
  async end(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const id = this.#ids.get(request);
    if (id !== undefined) await endConsoleSession(this.#db, id);
    reply.clearCookie(SESSION_COOKIE, cookieOptions(request));
  }
}

function cookieOptions(request: FastifyRequest) {
  return { path: '/console', httpOnly: true, sameSite: 'strict' as const, secure: request.protocol === 'https' };
}

/**
 * State changes come only from the console's own pages: a POST must carry an Origin naming this
 * host. Browsers send Origin on every cross-site POST and on same-origin ones too, so a request
 * without one is not from a console page either.
 */
export function isSameOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  if (typeof origin !== 'string' || origin === 'null') return false;
  try {
    const url = new URL(origin);
    return url.host === request.host && (url.protocol === 'http:' || url.protocol === 'https:');
  } catch {
    return false;
  }
}
