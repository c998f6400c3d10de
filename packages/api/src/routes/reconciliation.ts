import { parseReconcileSince, reconcile, type ReconciliationContext, treasuryBooksFromConfig } from '@referrals/core';
import type { RouteContext, TypedApp } from '../app.ts';
import { ReconciliationQuery, ReconciliationReportSchema } from '../schemas.ts';
import { ClientErrors } from './responses.ts';

/** Reconciliation of recorded payouts with the treasury's books; admin only. */
export function reconciliationRoutes(app: TypedApp, ctx: RouteContext): void {
  const admin = { onRequest: ctx.requireAdmin };
  const security = [{ adminToken: [] }];
  const reconciliation = (reqId: string): ReconciliationContext => ({
    db: ctx.db,
    treasury: treasuryBooksFromConfig(ctx.config),
    gateway: ctx.config.payoutGateway,
    logger: ctx.logger.child({ reqId }),
  });

  app.get(
    '/api/marketplace/referral-payouts/reconciliation',
    {
      ...admin,
      schema: {
        summary: 'Differences between recorded referral payouts and the treasury’s transfers since a date',
        description:
          'Reads the treasury page by page and reports unrecorded transfers, levels missing at the treasury and mismatches. ' +
          'Changes nothing. 502 when the treasury cannot be read.',
        tags: ['admin'],
        security,
        querystring: ReconciliationQuery,
        response: { 200: ReconciliationReportSchema, ...ClientErrors },
      },
    },
    async (request) => {
      const since = request.query.since === undefined ? undefined : parseReconcileSince(request.query.since);
      return reconcile(reconciliation(request.id), { actor: 'admin-api', since });
    },
  );
}
