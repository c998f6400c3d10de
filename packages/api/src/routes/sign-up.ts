import { createContent, createReferralCode, signUp } from '@referrals/core';
import { MARKETPLACE_SECURITY, type RouteContext, type TypedApp } from '../app.ts';
import { ClientErrors } from './responses.ts';
import {
  ContentBody,
  ContentSchema,
  ReferralCodeBody,
  ReferralCodeSchema,
  UserBody,
  UserSchema,
} from '../schemas/sign-up.ts';

/** Users, referral codes and content: what a purchase needs to exist. */
export function signUpRoutes(app: TypedApp, ctx: RouteContext): void {
  app.post(
    '/api/users',
    {
      onRequest: ctx.requireMarketplace,
      schema: {
        summary: 'Sign up, optionally with a referral code (the referral chain is captured now)',
        tags: ['users'],
        security: MARKETPLACE_SECURITY,
        body: UserBody,
        response: { 201: UserSchema, ...ClientErrors },
      },
    },
    async (request, reply) => reply.code(201).send(await signUp(ctx.db, request.body)),
  );

  app.post(
    '/api/referral-codes',
    {
      onRequest: ctx.requireAdmin,
      schema: {
        summary: 'Create a referral code (generated when absent); direct + grand may not exceed the platform fee',
        tags: ['users', 'admin'],
        security: [{ adminToken: [] }],
        body: ReferralCodeBody,
        response: { 201: ReferralCodeSchema, ...ClientErrors },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await createReferralCode(ctx.db, request.body, ctx.config.platformFeeBps)),
  );

  app.post(
    '/api/content',
    {
      onRequest: ctx.requireMarketplace,
      schema: {
        summary: 'Publish content at a price in minor units',
        tags: ['content'],
        security: MARKETPLACE_SECURITY,
        body: ContentBody,
        response: { 201: ContentSchema, ...ClientErrors },
      },
    },
    async (request, reply) => reply.code(201).send(await createContent(ctx.db, request.body)),
  );
}
