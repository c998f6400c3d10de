import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import {
  type Actor,
  DomainError,
  getReferralPayoutStatus,
  listFailedPayouts,
  MAX_FAILED_PAGE,
  pausePayouts,
  payoutSummary,
  processReferralPayouts,
  resumePayouts,
  summarizeGate,
} from '@referrals/core';
import type { RouteContext, TypedApp } from '../app.ts';
import { IdParams } from '../schemas/fields.ts';
import {
  FailedListQuery,
  FailedListSchema,
  PauseBody,
  ReferralPayoutStatusView,
  SummarySchema,
  TreasuryGateSchema,
} from '../schemas/referral-payouts.ts';
import { ClientErrors } from './responses.ts';

const DEFAULT_FAILED_PAGE = 50;

/**
 * Runs the one payout function for an operator (admin API or console) and counts the run in the
 * API's metrics; the purchase's history names the operator (null for the shared ADMIN_API_TOKEN).
 * A failed transfer is an answer about the purchase, not a failure of the request: the attempt and
 * its error are recorded, and the status read afterwards shows them.
 */
export async function processForOperator(
  ctx: RouteContext,
  purchaseId: string,
  by: { actor: Actor; operator: string | null },
  logger: Logger,
): Promise<void> {
  const started = performance.now();
  const result = await processReferralPayouts(ctx.payouts, purchaseId, { ...by, logger });
  ctx.metrics.recordPayoutRun((performance.now() - started) / 1000, result);
}

// Who the audit trail names for a request made with the shared ADMIN_API_TOKEN (a named token names itself).
const SHARED_ADMIN = 'admin';

/** Operator endpoints over referral payouts; all need the admin token. */
export function referralPayoutRoutes(app: TypedApp, ctx: RouteContext): void {
  const admin = { onRequest: ctx.requireAdmin };
  const security = [{ adminToken: [] }];

  app.post(
    '/api/marketplace/purchase/:id/process-referral-payouts',
    {
      ...admin,
      schema: {
        summary: 'Process one purchase’s referral payouts now (the same function the worker runs)',
        description:
          'Answers 200 with the referral payout status after the run, whether it paid, had nothing left to pay, or the ' +
          'transfer failed (then status stays queued/failed and lastError says why). 409 while the purchase is not confirmed.',
        tags: ['admin'],
        security,
        params: IdParams,
        response: { 200: ReferralPayoutStatusView, ...ClientErrors },
      },
    },
    async (request) => {
      const purchaseId = request.params.id;
      await processForOperator(
        ctx,
        purchaseId,
        { actor: 'admin-api', operator: request.operator },
        ctx.logger.child({ reqId: request.id, operator: request.operator ?? undefined }),
      );
      return getReferralPayoutStatus(ctx.db, purchaseId);
    },
  );

  app.get(
    '/api/marketplace/purchase/:id/referral-payout-status',
    {
      ...admin,
      schema: {
        summary: 'Referral payout status, attempts, last error, per-level payouts and history',
        tags: ['admin'],
        security,
        params: IdParams,
        response: { 200: ReferralPayoutStatusView, ...ClientErrors },
      },
    },
    async (request) => getReferralPayoutStatus(ctx.db, request.params.id),
  );

  app.get(
    '/api/marketplace/referral-payouts/failed',
    {
      ...admin,
      schema: {
        summary: 'Purchases whose referral payouts failed, newest first (keyset pagination)',
        tags: ['admin'],
        security,
        querystring: FailedListQuery,
        response: { 200: FailedListSchema, ...ClientErrors },
      },
    },
    async (request) => {
      const { limit: rawLimit, cursor } = request.query;
      const limit = rawLimit === undefined ? DEFAULT_FAILED_PAGE : Number(rawLimit);
      if (limit < 1 || limit > MAX_FAILED_PAGE) {
        throw new DomainError('validation_failed', `limit must be between 1 and ${MAX_FAILED_PAGE}, got ${rawLimit}`);
      }
      return listFailedPayouts(ctx.db, { limit, cursor });
    },
  );

  app.get(
    '/api/marketplace/referral-payouts/summary',
    {
      ...admin,
      schema: {
        summary:
          'Payout health: counts per status, oldest queued age, stuck queued purchases, outbox backlog, recent failures',
        tags: ['admin'],
        security,
        response: { 200: SummarySchema, ...ClientErrors },
      },
    },
    async () => payoutSummary(ctx.db, { stuckQueuedAfterSeconds: ctx.config.stuckQueuedAfterSeconds }),
  );

  app.post(
    '/api/marketplace/referral-payouts/pause',
    {
      ...admin,
      schema: {
        summary: 'Pause referral payouts for every worker until resumed (incident, fraud review)',
        description:
          'No transfer starts while paused (those already sent finish), no purchase is charged an attempt, and confirm is ' +
          'unaffected. 409 when payouts are already paused.',
        tags: ['admin'],
        security,
        body: PauseBody,
        response: { 200: TreasuryGateSchema, ...ClientErrors },
      },
    },
    async (request) => {
      const logger = ctx.logger.child({ reqId: request.id });
      const view = await pausePayouts(
        ctx.db,
        { actor: 'admin-api', operator: request.operator ?? SHARED_ADMIN, reason: request.body.reason },
        logger,
      );
      ctx.payouts.gate?.forget();
      return summarizeGate(view);
    },
  );

  app.post(
    '/api/marketplace/referral-payouts/resume',
    {
      ...admin,
      schema: {
        summary: 'Resume paused referral payouts; the queued backlog drains at once',
        description:
          '409 when payouts are not paused (an open circuit breaker closes by itself when the treasury answers).',
        tags: ['admin'],
        security,
        response: { 200: TreasuryGateSchema, ...ClientErrors },
      },
    },
    async (request) => {
      const logger = ctx.logger.child({ reqId: request.id });
      const view = await resumePayouts(
        ctx.db,
        { actor: 'admin-api', operator: request.operator ?? SHARED_ADMIN },
        logger,
      );
      ctx.payouts.gate?.forget();
      return summarizeGate(view);
    },
  );
}
