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
import { Eta } from 'eta';
import type { RouteContext, TypedApp } from '../app.ts';
import { DATABASE_UNAVAILABLE, toErrorAnswer } from '../http-errors.ts';
import { format } from './format.ts';
import { overviewRoutes } from './overview-routes.ts';
import { payoutsRoutes } from './payouts-routes.ts';
import { purchaseRoutes } from './purchase-routes.ts';
import { renderError } from './render.ts';
import { type ConsoleSession, ConsoleSessions, isSameOrigin } from './session.ts';
import { signInRoutes } from './sign-in-routes.ts';

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

export async function consoleRoutes(app: TypedApp, ctx: RouteContext): Promise<void> {
  const sessions = new ConsoleSessions(ctx.adminTokens, ctx.db);

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
    request.consoleSession = await sessions.read(request);
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

  signInRoutes(app, ctx, sessions);
  overviewRoutes(app, ctx);
  payoutsRoutes(app, ctx);
  purchaseRoutes(app, ctx);
}
