import type { FastifyRequest } from 'fastify';
import { confirmPurchase, createPurchase, DomainError, getPurchase } from '@referrals/core';
import { MARKETPLACE_SECURITY, type RouteContext, type TypedApp } from '../app.ts';
import { IdParams } from '../schemas/fields.ts';
import {
  ConfirmPurchaseBody,
  CreatePurchaseBody,
  CreatePurchaseHeaders,
  PurchaseSchema,
} from '../schemas/marketplace.ts';
import { ClientErrors } from './responses.ts';

const REPLAYED_HEADER = 'idempotent-replayed';

/**
 * Node joins repeated headers into one value ("a, b"), which would pass as a key of its own: two
 * Idempotency-Key headers are a client bug to report, not a third key to invent.
 */
async function refuseRepeatedIdempotencyKey(request: FastifyRequest): Promise<void> {
  const raw = request.raw.rawHeaders;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'idempotency-key') count++;
  if (count > 1) throw new DomainError('validation_failed', `send one Idempotency-Key header, not ${count}`);
}

export function marketplaceRoutes(app: TypedApp, ctx: RouteContext): void {
  app.post(
    '/api/marketplace/purchases',
    {
      onRequest: [ctx.requireMarketplace, refuseRepeatedIdempotencyKey],
      schema: {
        summary: 'Create a pending purchase with a price snapshot',
        description:
          'With an Idempotency-Key header (1..255 characters, one header) a retry gets the first answer given under the key, ' +
          'status and body as they were (header Idempotent-Replayed: true), for IDEMPOTENCY_KEY_TTL_HOURS; ids compare ' +
          'case-insensitively. The same key with another body is 422 idempotency_key_reused.',
        tags: ['purchases'],
        security: MARKETPLACE_SECURITY,
        headers: CreatePurchaseHeaders,
        body: CreatePurchaseBody,
        response: { 201: PurchaseSchema, ...ClientErrors },
      },
    },
    async (request, reply) => {
      const { status, purchase, replayed } = await createPurchase(ctx.db, {
        ...request.body,
        idempotencyKey: request.headers['idempotency-key'],
      });
      if (replayed) reply.header(REPLAYED_HEADER, 'true');
      return reply.code(status).send(purchase);
    },
  );

  app.post(
    '/api/marketplace/purchase/:id/confirm',
    {
      onRequest: ctx.requireMarketplace,
      schema: {
        summary: 'Confirm a paid purchase: treasury distribution and referral payout decision in one transaction',
        description:
          'Confirming again with the same paymentReference returns the stored result (Idempotent-Replayed: true); ' +
          'another reference is 409. The answer never waits for a payout.',
        tags: ['purchases'],
        security: MARKETPLACE_SECURITY,
        params: IdParams,
        body: ConfirmPurchaseBody,
        response: { 200: PurchaseSchema, ...ClientErrors },
      },
    },
    async (request, reply) => {
      const { purchase, replayed } = await confirmPurchase(
        ctx.db,
        { purchaseId: request.params.id, paymentReference: request.body.paymentReference },
        { platformFeeBps: ctx.config.platformFeeBps },
      );
      if (replayed) reply.header(REPLAYED_HEADER, 'true');
      else if (purchase.referralPayoutStatus !== null) ctx.metrics.recordConfirmation(purchase.referralPayoutStatus);
      return purchase;
    },
  );

  app.get(
    '/api/marketplace/purchase/:id',
    {
      onRequest: ctx.requireMarketplace,
      schema: {
        summary: 'A purchase',
        tags: ['purchases'],
        security: MARKETPLACE_SECURITY,
        params: IdParams,
        response: { 200: PurchaseSchema, ...ClientErrors },
      },
    },
    async (request) => getPurchase(ctx.db, request.params.id),
  );
}
