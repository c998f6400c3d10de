import { parseReconcileSince, reconcile, type ReconciliationContext, treasuryBooksFromConfig } from '@referrals/core';
import type { RouteContext, TypedApp } from '../app.ts';
import { ReconciliationFixBody, ReconciliationQuery, ReconciliationReportSchema } from '../schemas/reconciliation.ts';
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

  app.post(
    '/api/marketplace/referral-payouts/reconciliation/fix',
    {
      ...admin,
      schema: {
        summary:
          'Reconcile, and record each unrecorded transfer that matches the planned level as paid (no money is sent)',
        description:
          'The same comparison as GET .../reconciliation. An unrecorded transfer whose amount, currency and beneficiary match ' +
          'the level we planned is recorded as paid with the treasury’s reference (and completes the purchase when nothing is ' +
          'left to pay); it is listed under `fixed`. Everything else stays in `drift` for a person to decide. Safe to repeat.',
        tags: ['admin'],
        security,
        body: ReconciliationFixBody,
        response: { 200: ReconciliationReportSchema, ...ClientErrors },
      },
    },
    async (request) => {
      const since = request.body?.since === undefined ? undefined : parseReconcileSince(request.body.since);
      return reconcile(reconciliation(request.id), {
        actor: 'admin-api',
        operator: request.operator,
        fix: true,
        since,
      });
    },
  );
}
