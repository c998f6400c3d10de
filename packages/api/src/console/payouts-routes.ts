import { type Static, Type } from '@sinclair/typebox';
import { MAX_SEARCH_TEXT, parseSearchTime, type ReferralPayoutStatus, searchReferralPayouts } from '@referrals/core';
import type { RouteContext, TypedApp } from '../app.ts';
import { page } from './render.ts';

const PAGE_SIZE = 50;
const STATUSES: ReferralPayoutStatus[] = ['queued', 'completed', 'failed', 'not_applicable'];
const hide = { hide: true };

const PayoutsQuery = Type.Object(
  {
    q: Type.Optional(Type.String({ maxLength: MAX_SEARCH_TEXT })),
    status: Type.Optional(Type.Union([...STATUSES.map((s) => Type.Literal(s)), Type.Literal('')])),
    from: Type.Optional(Type.String({ maxLength: 40 })),
    to: Type.Optional(Type.String({ maxLength: 40 })),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

/** The payouts list with its search, and "Retry all failed" with its progress. */
export function payoutsRoutes(app: TypedApp, ctx: RouteContext): void {
  app.get('/console/payouts', { schema: { ...hide, querystring: PayoutsQuery } }, async (request, reply) => {
    const query = request.query as Static<typeof PayoutsQuery>;
    const status = query.status === '' ? undefined : query.status;
    const results = await searchReferralPayouts(ctx.db, {
      status,
      q: query.q,
      from: query.from ? parseSearchTime('from', query.from) : undefined,
      to: query.to ? parseSearchTime('to', query.to) : undefined,
      limit: PAGE_SIZE,
      cursor: query.cursor || undefined,
    });
    const next =
      results.nextCursor === null
        ? null
        : `/console/payouts?${new URLSearchParams({ ...withoutEmpty(query), cursor: results.nextCursor })}`;
    return page(reply, request, 'payouts.eta', {
      title: 'Payouts',
      query,
      status,
      statuses: STATUSES,
      results,
      next,
      report: null,
    });
  });

  app.post('/console/payouts/retry-failed', { schema: hide }, async (request, reply) => {
    const operator = request.consoleSession!.operator;
    const payouts = { ...ctx.payouts, logger: ctx.logger.child({ reqId: request.id, operator }) };
    const report = await ctx.bulkRetries.run(payouts, { actor: 'console', operator });
    // The outcome is this page itself; a reload shows the list without repeating the run.
    const query = { status: 'failed' as const };
    const results = await searchReferralPayouts(ctx.db, { status: 'failed', limit: PAGE_SIZE });
    const next =
      results.nextCursor === null
        ? null
        : `/console/payouts?${new URLSearchParams({ status: 'failed', cursor: results.nextCursor })}`;
    return page(reply, request, 'payouts.eta', {
      title: 'Payouts',
      query,
      status: 'failed',
      statuses: STATUSES,
      results,
      next,
      report,
    });
  });

  app.get('/console/payouts/retry-failed/progress', { schema: hide }, async () => ctx.bulkRetries.progress());
}

function withoutEmpty(query: Record<string, string | undefined>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [key, value] of Object.entries(query))
    if (value !== undefined && value !== '' && key !== 'cursor') kept[key] = value;
  return kept;
}
