import type { Static } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import {
  latestReconciliation,
  MAX_PAUSE_REASON,
  pausePayouts,
  payoutLagHistory,
  payoutSummary,
  resumePayouts,
} from '@referrals/core';
import type { RouteContext, TypedApp } from '../app.ts';
import { lagChart } from './lag-chart.ts';
import { NoticeQuery, ReasonBody } from './form-schemas.ts';
import { page } from './render.ts';

const hide = { hide: true };

/** The overview page and the treasury pause and resume it offers. */
export function overviewRoutes(app: TypedApp, ctx: RouteContext): void {
  app.get('/console', { schema: { ...hide, querystring: NoticeQuery } }, async (request, reply) => {
    const [summary, lag, reconciliation] = await Promise.all([
      payoutSummary(ctx.db, { stuckQueuedAfterSeconds: ctx.config.stuckQueuedAfterSeconds }),
      payoutLagHistory(ctx.db),
      latestReconciliation(ctx.db),
    ]);
    return page(reply, request, 'overview.eta', {
      title: 'Overview',
      refresh: true,
      summary,
      reconciliation,
      chart: lagChart(lag),
      maxPauseReason: MAX_PAUSE_REASON,
    });
  });

  app.post('/console/treasury/pause', { schema: { ...hide, body: ReasonBody } }, async (request, reply) => {
    const body = request.body as Static<typeof ReasonBody>;
    await pausePayouts(ctx.db, { actor: 'console', operator: operatorName(request), reason: body.reason }, ctx.logger);
    return reply.redirect('/console?notice=paused', 303);
  });

  app.post('/console/treasury/resume', { schema: hide }, async (request, reply) => {
    await resumePayouts(ctx.db, { actor: 'console', operator: operatorName(request) }, ctx.logger);
    return reply.redirect('/console?notice=resumed', 303);
  });
}

/** The pause records a name; an operator signed in with the shared ADMIN_API_TOKEN is "admin". */
const operatorName = (request: FastifyRequest) => request.consoleSession?.operator ?? 'admin';
