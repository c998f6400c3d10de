import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '@referrals/core';
import { type AdminTokens, bearerToken, digest } from './admin-auth.ts';

/**
 * An onRequest hook for the marketplace routes (users, content, purchases, confirm, purchase read):
 * `Authorization: Bearer <SERVICE_API_TOKEN>`, the marketplace front end's credential, or any admin
 * token. With neither configured every request is refused: a route is never open by omission.
 */
export function marketplaceGuard(serviceApiToken: string | undefined, adminTokens: AdminTokens) {
  const expected = serviceApiToken === undefined ? undefined : digest(serviceApiToken);
  return async function requireMarketplace(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    reply.header('www-authenticate', 'Bearer realm="marketplace"');
    if (expected === undefined && !adminTokens.configured) {
      throw new DomainError(
        'unauthorized',
        'marketplace endpoints are disabled: SERVICE_API_TOKEN is not set on the server',
      );
    }
    const token = bearerToken(request);
    if (token === undefined)
      throw new DomainError('unauthorized', 'marketplace endpoint: send Authorization: Bearer <SERVICE_API_TOKEN>');
    // Both checks always run, so the time taken does not say which kind of token was close.
    const isService = expected !== undefined && timingSafeEqual(digest(token), expected);
    const admin = adminTokens.identify(token);
    if (!isService && !admin) throw new DomainError('unauthorized', 'token is not valid for marketplace endpoints');
    request.operator = admin?.operator ?? null;
    reply.removeHeader('www-authenticate');
  };
}

/** `/metrics` asks for `Authorization: Bearer <METRICS_TOKEN>` when one is configured, and is open otherwise. */
export function metricsGuard(metricsToken: string | undefined) {
  const expected = metricsToken === undefined ? undefined : digest(metricsToken);
  return async function requireMetrics(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (expected === undefined) return;
    const token = bearerToken(request);
    if (token === undefined || !timingSafeEqual(digest(token), expected)) {
      reply.header('www-authenticate', 'Bearer realm="metrics"');
      throw new DomainError('unauthorized', 'metrics: send Authorization: Bearer <METRICS_TOKEN>');
    }
  };
}
