import {
  DomainError,
  getReferralPayoutStatus,
  parseSearchTime,
  searchReferralPayouts,
  writeOffReferralPayouts,
} from '@referrals/core';
import type { RouteContext, TypedApp } from '../app.ts';
import { BULK_RETRY_MAX_CONCURRENCY } from '../bulk-retry.ts';
import { IdParams } from '../schemas/fields.ts';
import {
  BulkRetryQuery,
  BulkRetryReportSchema,
  SearchPageSchema,
  SearchQuery,
  WriteOffBody,
} from '../schemas/payout-operations.ts';
import { ReferralPayoutStatusView } from '../schemas/referral-payouts.ts';
import { ClientErrors } from './responses.ts';

export const DEFAULT_SEARCH_PAGE = 50;

/** Operator repairs and search over referral payouts; all need an admin token. */
export function payoutOperationRoutes(app: TypedApp, ctx: RouteContext): void {
  const admin = { onRequest: ctx.requireAdmin };
  const security = [{ adminToken: [] }];

  app.post(
    '/api/marketplace/purchase/:id/write-off-referral-payouts',
    {
      ...admin,
      schema: {
        summary: 'Give up on a failed purchase’s unpaid referral payouts, with a reason',
        description:
          'The purchase becomes not_applicable with reason written_off; its unpaid levels are marked written_off and ' +
          'levels already paid are left as they are. The reason and the operator are kept in the history. 409 unless ' +
          'the purchase is failed.',
        tags: ['admin'],
        security,
        params: IdParams,
        body: WriteOffBody,
        response: { 200: ReferralPayoutStatusView, ...ClientErrors },
      },
    },
    async (request) => {
      const purchaseId = request.params.id;
      await writeOffReferralPayouts(ctx.db, purchaseId, {
        actor: 'admin-api',
        operator: request.operator,
        note: request.body.reason,
      });
      return getReferralPayoutStatus(ctx.db, purchaseId);
    },
  );

  app.get(
    '/api/marketplace/referral-payouts',
    {
      ...admin,
      schema: {
        summary: 'Search confirmed purchases’ referral payouts, newest confirmation first (keyset pagination)',
        description:
          '`q` matches a purchase, buyer or beneficiary id exactly, a buyer or beneficiary handle (case-insensitive), ' +
          'or any part of an error text.',
        tags: ['admin'],
        security,
        querystring: SearchQuery,
        response: { 200: SearchPageSchema, ...ClientErrors },
      },
    },
    async (request) => {
      const { status, q, from, to, limit, cursor } = request.query;
      return searchReferralPayouts(ctx.db, {
        status,
        q,
        from: from === undefined ? undefined : parseSearchTime('from', from),
        to: to === undefined ? undefined : parseSearchTime('to', to),
        limit: limit === undefined ? DEFAULT_SEARCH_PAGE : Number(limit),
        cursor,
      });
    },
  );

  app.post(
    '/api/marketplace/referral-payouts/failed/process',
    {
      ...admin,
      schema: {
        summary: 'Retry every failed purchase, oldest failure first, and answer with the outcome',
        description:
          'Each purchase that is failed when the run starts goes through the same payout function as the worker; levels ' +
          'already paid are never sent again. Answers when the run is over. 409 while another bulk retry started ' +
          'through this API process is still running.',
        tags: ['admin'],
        security,
        querystring: BulkRetryQuery,
        response: { 200: BulkRetryReportSchema, ...ClientErrors },
      },
    },
    async (request) => {
      const concurrency = request.query.concurrency === undefined ? undefined : Number(request.query.concurrency);
      if (concurrency !== undefined && (concurrency < 1 || concurrency > BULK_RETRY_MAX_CONCURRENCY)) {
        throw new DomainError(
          'validation_failed',
          `concurrency must be between 1 and ${BULK_RETRY_MAX_CONCURRENCY}, got ${concurrency}`,
        );
      }
      const payouts = { ...ctx.payouts, logger: ctx.logger.child({ reqId: request.id }) };
      return ctx.bulkRetries.run(payouts, { actor: 'admin-api', operator: request.operator }, concurrency);
    },
  );
}
