import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
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
 * The console's session lives in one cookie: HttpOnly (no script reads it), SameSite=Strict (no other
 * site's page sends it), Secure over https, limited to /console, signed with a key derived from the
 * admin tokens, and carrying its own expiry so a copied cookie stops working after SESSION_HOURS even
 * if the browser keeps it.
 */
export class ConsoleSessions {
  readonly #tokens: AdminTokens;

  constructor(tokens: AdminTokens) {
    this.#tokens = tokens;
  }

  /** The session of this request, if its cookie is signed by us, unexpired, and its token still accepted. */
  read(request: FastifyRequest): ConsoleSession | undefined {
    const raw = request.cookies[SESSION_COOKIE];
    if (raw === undefined) return undefined;
    const unsigned = request.unsignCookie(raw);
    if (!unsigned.valid || unsigned.value === null) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(unsigned.value, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { op, exp } = parsed as { op?: unknown; exp?: unknown };
    if (!(op === null || typeof op === 'string') || typeof exp !== 'number') return undefined;
    if (exp <= Date.now() || !this.#tokens.has(op)) return undefined;
    return { operator: op, expiresAt: exp };
  }

  start(request: FastifyRequest, reply: FastifyReply, operator: string | null): void {
    const expiresAt = Date.now() + SESSION_MS;
    // The nonce makes every session's cookie different, even for the same operator in the same millisecond.
    const value = Buffer.from(
      JSON.stringify({ op: operator, exp: expiresAt, n: randomBytes(8).toString('hex') }),
    ).toString('base64url');
    reply.setCookie(SESSION_COOKIE, value, { ...cookieOptions(request), signed: true, maxAge: SESSION_MS / 1000 });
  }

  end(request: FastifyRequest, reply: FastifyReply): void {
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
