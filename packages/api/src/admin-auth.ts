import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '@referrals/core';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * An onRequest hook for admin routes: `Authorization: Bearer <ADMIN_API_TOKEN>`. Both sides are
 * hashed first so the comparison takes the same time whatever the length or content of the guess.
 * Without a configured token every admin request is refused: there is no open default.
 */
export function adminGuard(adminApiToken: string | undefined) {
  const expected = adminApiToken === undefined ? undefined : digest(adminApiToken);
  return async function requireAdmin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    reply.header('www-authenticate', 'Bearer realm="admin"');
    if (expected === undefined) {
      throw new DomainError('unauthorized', 'admin endpoints are disabled: ADMIN_API_TOKEN is not set on the server');
    }
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (!match) throw new DomainError('unauthorized', 'admin endpoint: send Authorization: Bearer <ADMIN_API_TOKEN>');
    if (!timingSafeEqual(digest(match[1]!), expected)) throw new DomainError('unauthorized', 'admin token is not valid');
    reply.removeHeader('www-authenticate');
  };
}
