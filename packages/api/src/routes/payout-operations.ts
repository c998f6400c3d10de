import {
  getReferralPayoutStatus,
  parseSearchTime,
  searchReferralPayouts,
  writeOffReferralPayouts,
} from '@referrals/core';
import type { RouteContext, TypedApp } from '../app.ts';
import { IdParams, ReferralPayoutStatusView, SearchPageSchema, SearchQuery, WriteOffBody } from '../schemas.ts';
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
      await writeOffReferralPayouts(ctx.db, purchaseId, { actor: 'admin-api', operator: request.operator, note: request.body.reason });
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
}
