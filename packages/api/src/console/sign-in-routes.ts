import { type Static, Type } from '@sinclair/typebox';
import type { RouteContext, TypedApp } from '../app.ts';
import { noticeOf } from './render.ts';
import type { ConsoleSessions } from './session.ts';

const SignInBody = Type.Object({ token: Type.String({ maxLength: 1024 }) }, { additionalProperties: false });
const hide = { hide: true };

/** The sign-in page and form, and sign-out: the only console routes reachable without a session. */
export function signInRoutes(app: TypedApp, ctx: RouteContext, sessions: ConsoleSessions): void {
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
      await sessions.start(request, reply, identity.operator);
      request.log.info({ operator: identity.operator }, 'console sign-in');
      return reply.redirect('/console', 303);
    },
  );

  app.post('/console/sign-out', { config: { public: true }, schema: hide }, async (request, reply) => {
    // Ends the session server-side: a copy of the cookie is refused from now on.
    await sessions.end(request, reply);
    if (request.consoleSession) request.log.info({ operator: request.consoleSession.operator }, 'console sign-out');
    return reply.redirect('/console/sign-in?notice=signed-out', 303);
  });
}
