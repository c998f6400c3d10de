/**
 * The operator console: server-rendered pages under /console, served by the API process. Reading
 * works without JavaScript; every state change is a POST from one of these pages, checked for a
 * session and for its Origin, and goes through the same core functions as the API and the CLI.
 */
import { fileURLToPath } from 'node:url';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import helmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import view from '@fastify/view';
import { type Static, Type } from '@sinclair/typebox';
import { Eta } from 'eta';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  getPurchase,
  getReferralPayoutStatus,
  handlesOf,
  latestReconciliation,
  MAX_NOTE_LENGTH,
  MAX_PAUSE_REASON,
  MAX_SEARCH_TEXT,
  parseSearchTime,
  pausePayouts,
  payoutLagHistory,
  payoutSummary,
  resumePayouts,
  type ReferralPayoutStatus,
  searchReferralPayouts,
  validateNote,
  writeOffReferralPayouts,
} from '@referrals/core';
import type { RouteContext, TypedApp } from '../app.ts';
import { DATABASE_UNAVAILABLE, toErrorAnswer } from '../http-errors.ts';
import { processForOperator } from '../routes/referral-payouts.ts';
import { Uuid } from '../schemas.ts';
import { format } from './format.ts';
import { lagChart } from './lag-chart.ts';
import { type ConsoleSession, ConsoleSessions, isSameOrigin, SESSION_HOURS } from './session.ts';

declare module 'fastify' {
  interface FastifyRequest {
    consoleSession: ConsoleSession | undefined;
  }
  interface FastifyContextConfig {
    /** Reachable without a session: the sign-in page and its form. */
    public?: boolean;
  }
}

const VIEWS = fileURLToPath(new URL('./views/', import.meta.url));
const ASSETS = fileURLToPath(new URL('./assets/', import.meta.url));
const PAGE_SIZE = 50;
const STATUSES: ReferralPayoutStatus[] = ['queued', 'completed', 'failed', 'not_applicable'];

/** Fixed texts shown after a redirect; the query names one, so nothing the client sends is echoed. */
const NOTICES = {
  'signed-out': 'Signed out.',
  retried: 'Payout processed: the status below is the result.',
  'written-off': 'Referral payouts written off.',
  paused: 'Payouts paused.',
  resumed: 'Payouts resumed.',
} as const;
type Notice = keyof typeof NOTICES;

const SignInBody = Type.Object({ token: Type.String({ maxLength: 1024 }) }, { additionalProperties: false });
const ReasonBody = Type.Object(
  { reason: Type.String({ maxLength: 4096 }), confirm: Type.Optional(Type.Literal('yes')) },
  { additionalProperties: false },
);
const PurchaseParams = Type.Object({ id: Uuid }, { additionalProperties: false });
const NoticeQuery = Type.Object(
  { notice: Type.Optional(Type.String({ maxLength: 32 })) },
  { additionalProperties: false },
);
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

export async function consoleRoutes(app: TypedApp, ctx: RouteContext): Promise<void> {
  const sessions = new ConsoleSessions(ctx.adminTokens);

  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
      },
    },
    // The console may be served over plain http on a loopback address; HSTS there would be ignored.
    strictTransportSecurity: false,
    // Purchase ids in URLs stay on this origin. Not `no-referrer`: under it browsers send
    // `Origin: null` on the console's own form posts, which the Origin check must refuse.
    referrerPolicy: { policy: 'same-origin' },
    // The same as frame-ancestors 'none', for browsers that only know the older header.
    xFrameOptions: { action: 'deny' },
  });
  await app.register(cookie, { secret: ctx.adminTokens.sessionKey() });
  await app.register(formbody);
  await app.register(view, {
    engine: { eta: new Eta({ views: VIEWS, cache: true }) },
    root: VIEWS,
    production: true,
    defaultContext: { format },
  });
  await app.register(fastifyStatic, { root: ASSETS, prefix: '/console/assets/', decorateReply: false, index: false });

  app.decorateRequest('consoleSession', undefined);
  app.addHook('onRequest', async (request, reply) => {
    // Operator data must not linger in shared or browser caches.
    reply.header('cache-control', 'no-store');
    if (request.url.startsWith('/console/assets/')) return;
    request.consoleSession = sessions.read(request);
    if (request.method === 'POST' && !isSameOrigin(request)) {
      reply.code(403);
      return reply.send(
        await renderError(reply, request, 'This request did not come from a console page, so it was refused.'),
      );
    }
    if (request.consoleSession === undefined && request.routeOptions.config.public !== true) {
      // Nothing of the page is rendered: a browser is sent to sign in, a script sees a 303.
      return reply.redirect('/console/sign-in', 303);
    }
  });

  app.setErrorHandler(async (error, request, reply) => {
    const answer = toErrorAnswer(error);
    const hidden = answer.status >= 500 && answer !== DATABASE_UNAVAILABLE;
    if (hidden) request.log.error({ err: error }, 'console request failed');
    if (answer.retryAfterSeconds !== undefined) reply.header('retry-after', String(answer.retryAfterSeconds));
    reply.code(answer.status);
    return reply.send(
      await renderError(reply, request, hidden ? `Something went wrong (request ${request.id}).` : answer.message),
    );
  });

  const hide = { hide: true };

  app.get('/console/sign-in', { config: { public: true }, schema: hide }, async (request, reply) => {
    if (request.consoleSession) return reply.redirect('/console', 303);
    return reply.viewAsync('sign-in.eta', { title: 'Sign in', error: null, notice: noticeOf(request) });
  });

  app.post(
    '/console/sign-in',
    { config: { public: true }, schema: { ...hide, body: SignInBody } },
    async (request, reply) => {
      const body = request.body as Static<typeof SignInBody>;
      const identity = ctx.adminTokens.configured ? ctx.adminTokens.identify(body.token.trim()) : undefined;
      if (!identity) {
        request.log.warn({ configured: ctx.adminTokens.configured }, 'console sign-in refused');
        reply.code(401);
        const error = ctx.adminTokens.configured
          ? 'That admin token is not valid.'
          : 'Sign-in is disabled: the server has no ADMIN_API_TOKEN or ADMIN_TOKENS.';
        return reply.viewAsync('sign-in.eta', { title: 'Sign in', error, notice: null });
      }
      sessions.start(request, reply, identity.operator);
      request.log.info({ operator: identity.operator }, 'console sign-in');
      return reply.redirect('/console', 303);
    },
  );

  app.post('/console/sign-out', { config: { public: true }, schema: hide }, async (request, reply) => {
    sessions.end(request, reply);
    return reply.redirect('/console/sign-in?notice=signed-out', 303);
  });

  app.get('/console', { schema: { ...hide, querystring: NoticeQuery } }, async (request, reply) => {
    const [summary, lag, reconciliation] = await Promise.all([
      payoutSummary(ctx.db),
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

  app.get(
    '/console/purchases/:id',
    { schema: { ...hide, params: PurchaseParams, querystring: NoticeQuery } },
    async (request, reply) => {
      const { id } = request.params as Static<typeof PurchaseParams>;
      return page(reply, request, 'purchase.eta', await purchaseModel(id));
    },
  );

  app.post(
    '/console/purchases/:id/write-off',
    { schema: { ...hide, params: PurchaseParams, body: ReasonBody } },
    async (request, reply) => {
      const { id } = request.params as Static<typeof PurchaseParams>;
      const body = request.body as Static<typeof ReasonBody>;
      const note = validateNote(body.reason);
      if (body.confirm !== 'yes') {
        // The confirmation step: nothing is written until the operator confirms on this page.
        return page(reply, request, 'write-off-confirm.eta', {
          ...(await purchaseModel(id)),
          title: 'Confirm write-off',
          note,
        });
      }
      await writeOffReferralPayouts(ctx.db, id, { actor: 'console', operator: request.consoleSession!.operator, note });
      return reply.redirect(`/console/purchases/${id}?notice=written-off`, 303);
    },
  );

  app.post('/console/purchases/:id/retry', { schema: { ...hide, params: PurchaseParams } }, async (request, reply) => {
    const { id } = request.params as Static<typeof PurchaseParams>;
    await processForOperator(
      ctx,
      id,
      'console',
      ctx.logger.child({ reqId: request.id, operator: request.consoleSession!.operator }),
    );
    return reply.redirect(`/console/purchases/${id}?notice=retried`, 303);
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

  async function purchaseModel(id: string) {
    const [purchase, status] = await Promise.all([getPurchase(ctx.db, id), getReferralPayoutStatus(ctx.db, id)]);
    const handles = await handlesOf(ctx.db, [purchase.buyerId, ...status.payouts.map((p) => p.beneficiaryId)]);
    return { title: `Purchase ${id}`, purchase, status, handles, maxNote: MAX_NOTE_LENGTH };
  }
}

/** The pause records a name; an operator signed in with the shared ADMIN_API_TOKEN is "admin". */
const operatorName = (request: FastifyRequest) => request.consoleSession?.operator ?? 'admin';

function noticeOf(request: FastifyRequest): string | null {
  const key = (request.query as { notice?: string } | undefined)?.notice;
  return key !== undefined && Object.hasOwn(NOTICES, key) ? NOTICES[key as Notice] : null;
}

function page(reply: FastifyReply, request: FastifyRequest, template: string, data: Record<string, unknown>) {
  return reply.viewAsync(template, {
    session: request.consoleSession,
    sessionHours: SESSION_HOURS,
    notice: noticeOf(request),
    ...data,
  });
}

function renderError(reply: FastifyReply, request: FastifyRequest, message: string) {
  return reply.viewAsync('error.eta', {
    title: 'Refused',
    session: request.consoleSession,
    notice: null,
    message,
    status: reply.statusCode,
  });
}

function withoutEmpty(query: Record<string, string | undefined>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [key, value] of Object.entries(query))
    if (value !== undefined && value !== '' && key !== 'cursor') kept[key] = value;
  return kept;
}
