import { sql } from 'kysely';
import type { RouteContext, TypedApp } from '../app.ts';
import { DATABASE_RETRY_AFTER_SECONDS } from '../http-errors.ts';
import { StatusSchema } from '../schemas/fields.ts';

// Probes and scrapes arrive every few seconds: their request lines would drown the log.
const QUIET = 'warn' as const;

export function healthRoutes(app: TypedApp, ctx: RouteContext): void {
  app.get(
    '/healthz',
    {
      logLevel: QUIET,
      schema: { summary: 'The process is up', tags: ['operations'], response: { 200: StatusSchema } },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      logLevel: QUIET,
      schema: {
        summary: 'The database answers; 503 while it does not',
        tags: ['operations'],
        response: { 200: StatusSchema, 503: StatusSchema },
      },
    },
    async (request, reply) => {
      try {
        await sql`select 1`.execute(ctx.db);
        return { status: 'ok' };
      } catch (error) {
        request.log.warn({ err: error }, 'database is not reachable');
        return reply
          .code(503)
          .header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS))
          .send({ status: 'unavailable' });
      }
    },
  );

  app.get(
    '/metrics',
    {
      logLevel: QUIET,
      onRequest: ctx.requireMetrics,
      schema: {
        summary: 'Prometheus metrics; state gauges are at most a few seconds old',
        description: 'Open unless METRICS_TOKEN is configured; then it needs Authorization: Bearer <METRICS_TOKEN>.',
        tags: ['operations'],
        security: [{}, { metricsToken: [] }],
      },
    },
    async (_request, reply) => {
      const text = await ctx.metrics.render();
      return reply.type(ctx.metrics.registry.contentType).send(text);
    },
  );
}
