import { confirmPurchase, createPurchase, getPurchase } from '@referrals/core';
import { MARKETPLACE_SECURITY, type RouteContext, type TypedApp } from '../app.ts';
import { ConfirmPurchaseBody, CreatePurchaseBody, CreatePurchaseHeaders, IdParams, PurchaseSchema } from '../schemas.ts';
import { ClientErrors } from './responses.ts';

const REPLAYED_HEADER = 'idempotent-replayed';

export function marketplaceRoutes(app: TypedApp, ctx: RouteContext): void {
  app.post(
    '/api/marketplace/purchases',
    {
      onRequest: ctx.requireMarketplace,
      schema: {
        summary: 'Create a pending purchase with a price snapshot',
        description:
          'With an Idempotency-Key header a retry returns the purchase the key created (header Idempotent-Replayed: true); ' +
          'the same key with another body is 422 idempotency_key_reused.',
        tags: ['purchases'],
        security: MARKETPLACE_SECURITY,
        headers: CreatePurchaseHeaders,
        body: CreatePurchaseBody,
        response: { 201: PurchaseSchema, ...ClientErrors },
      },
    },
    async (request, reply) => {
      const { purchase, replayed } = await createPurchase(ctx.db, {
        ...request.body,
        idempotencyKey: request.headers['idempotency-key'],
      });
      if (replayed) reply.header(REPLAYED_HEADER, 'true');
      return reply.code(201).send(purchase);
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
