import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Config, DomainError } from '@referrals/core';

declare module 'fastify' {
  interface FastifyRequest {
    /** The named operator (ADMIN_TOKENS) whose token authorised this request; null for ADMIN_API_TOKEN. */
    operator: string | null;
  }
}

/** Tokens are compared as hashes, so comparing takes the same time whatever the guess's length. */
export const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** The token of an `Authorization: Bearer <token>` header, when the request has one. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return (header === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(header))?.[1];
}

/** Who a valid admin token belongs to: a named operator, or null for the shared ADMIN_API_TOKEN. */
export interface AdminIdentity {
  operator: string | null;
}

/**
 * The admin tokens the server accepts: ADMIN_API_TOKEN and every named one of ADMIN_TOKENS. Tokens
 * are hashed before comparing, and every token is compared, so the time taken says nothing about
 * the length or content of a guess.
 */
export class AdminTokens {
  readonly #entries: { digest: Buffer; operator: string | null }[];

  constructor(config: Pick<Config, 'adminApiToken' | 'adminTokens'>) {
    this.#entries = [
      ...(config.adminApiToken === undefined ? [] : [{ digest: digest(config.adminApiToken), operator: null }]),
      ...config.adminTokens.map((t) => ({ digest: digest(t.token), operator: t.name })),
    ];
  }

  get configured(): boolean {
    return this.#entries.length > 0;
  }

  identify(token: string): AdminIdentity | undefined {
    const guess = digest(token);
    let found: AdminIdentity | undefined;
    for (const entry of this.#entries) {
      if (timingSafeEqual(guess, entry.digest)) found = { operator: entry.operator };
    }
    return found;
  }

  /**
   * A key for signing console sessions, derived from every accepted token: changing or removing any
   * of them ends every session, and nothing else needs to be configured or shared between replicas.
   */
  sessionKey(): Buffer {
    const hash = createHash('sha256').update('referral-payouts console session\0');
    for (const entry of this.#entries) hash.update(entry.digest);
    return hash.digest();
  }

  /** Whether `operator` (null for ADMIN_API_TOKEN) still has a token: a session ends when its token is removed. */
  has(operator: string | null): boolean {
    return this.#entries.some((e) => e.operator === operator);
  }
}

/**
 * An onRequest hook for admin routes: `Authorization: Bearer <token>` with ADMIN_API_TOKEN or a named
 * token. Without any configured token every admin request is refused: there is no open default.
 */
export function adminGuard(tokens: AdminTokens) {
  return async function requireAdmin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    reply.header('www-authenticate', 'Bearer realm="admin"');
    if (!tokens.configured) {
      throw new DomainError('unauthorized', 'admin endpoints are disabled: ADMIN_API_TOKEN is not set on the server');
    }
    const token = bearerToken(request);
    if (token === undefined)
      throw new DomainError('unauthorized', 'admin endpoint: send Authorization: Bearer <ADMIN_API_TOKEN>');
    const identity = tokens.identify(token);
    if (!identity) throw new DomainError('unauthorized', 'admin token is not valid');
    request.operator = identity.operator;
    reply.removeHeader('www-authenticate');
  };
}
