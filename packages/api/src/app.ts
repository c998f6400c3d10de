import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import {
  type Config,
  type Database,
  type PayoutContext,
  type PayoutGateway,
  payoutContextFromConfig,
} from '@referrals/core';
import { BulkRetries } from './bulk-retry.ts';
import { AdminTokens, adminGuard } from './admin-auth.ts';
import { errorHandler, notFoundHandler } from './http-errors.ts';
import { marketplaceGuard, metricsGuard } from './service-auth.ts';
import { refuseUnstorableText } from './text-input.ts';
import { type ApiMetrics, createApiMetrics } from './metrics.ts';
import { consoleRoutes } from './console/console-routes.ts';
import { OneLinePerRequest } from './request-log.ts';
import { healthRoutes } from './routes/health.ts';
import { marketplaceRoutes } from './routes/marketplace.ts';
import { payoutOperationRoutes } from './routes/payout-operations.ts';
import { reconciliationRoutes } from './routes/reconciliation.ts';
import { referralPayoutRoutes } from './routes/referral-payouts.ts';
import { signUpRoutes } from './routes/sign-up.ts';

export interface AppDeps {
  config: Config;
  db: Database;
  logger: Logger;
  /** Defaults to the gateway the configuration names, as the worker and the CLI do. */
  gateway?: PayoutGateway;
}

/** What every route module receives: the app's dependencies, resolved once. */
export interface RouteContext {
  config: Config;
  db: Database;
  logger: Logger;
  /** The payout context every process builds from the same configuration. */
  payouts: PayoutContext;
  metrics: ApiMetrics;
  adminTokens: AdminTokens;
  requireAdmin: ReturnType<typeof adminGuard>;
  /** SERVICE_API_TOKEN or an admin token. */
  requireMarketplace: ReturnType<typeof marketplaceGuard>;
  /** METRICS_TOKEN when configured. */
  requireMetrics: ReturnType<typeof metricsGuard>;
  /** Bulk retries of failed payouts started through this process (admin API and console). */
  bulkRetries: BulkRetries;
}

/** OpenAPI security of the marketplace routes: either credential will do. */
export const MARKETPLACE_SECURITY: { [scheme: string]: string[] }[] = [{ serviceToken: [] }, { adminToken: [] }];

/** Request bodies are small JSON documents; anything bigger is refused before it is parsed. */
export const BODY_LIMIT_BYTES = 16 * 1024;

/**
 * Builds the API without listening: the server entry listens, tests call `inject`. The database is
 * the caller's and is not closed with the app.
 */
export function buildApp(deps: AppDeps): TypedApp {
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; naming the base type keeps the instance type simple.
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    // A path that does not decode (`%ED%A0%80`) is refused before routing; answer it in our shape.
    frameworkErrors: (error, request, reply) => errorHandler(error, request, reply),
    logController: new OneLinePerRequest(),
    ajv: {
      // Fastify's defaults strip unknown fields and coerce types, which would silently accept
      // `{ "price": "1" }` or an extra field; here both are a 400.
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const adminTokens = new AdminTokens(deps.config);
  const ctx: RouteContext = {
    config: deps.config,
    db: deps.db,
    logger: deps.logger,
    payouts: payoutContextFromConfig(deps.config, { db: deps.db, logger: deps.logger, gateway: deps.gateway }),
    metrics: createApiMetrics(deps.db),
    adminTokens,
    requireAdmin: adminGuard(adminTokens),
    requireMarketplace: marketplaceGuard(deps.config.serviceApiToken, adminTokens),
    requireMetrics: metricsGuard(deps.config.metricsToken),
    bulkRetries: new BulkRetries(),
  };

  app.decorateRequest('operator', null);
  app.addHook('preValidation', refuseUnstorableText);
  // A bulk retry in progress takes no new purchase once the server closes; those under way finish.
  app.addHook('onClose', async () => ctx.bulkRetries.stop());
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);

  app.register(swagger, {
    openapi: {
      info: {
        title: 'Referral payouts',
        description: 'Marketplace purchases whose confirmation queues referral payouts through a transactional outbox.',
        version: '0.1.0',
      },
      components: {
        securitySchemes: {
          adminToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'ADMIN_API_TOKEN (or a named token of ADMIN_TOKENS)',
          },
          serviceToken: {
            type: 'http',
            scheme: 'bearer',
            description: "SERVICE_API_TOKEN, the marketplace front end's credential",
          },
          metricsToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'METRICS_TOKEN, asked for only when it is configured',
          },
        },
      },
    },
  });
  app.register(swaggerUi, { routePrefix: '/docs' });

  // Routes live in a plugin registered after swagger so that swagger sees every one of them.
  app.register(async (instance) => {
    const typed = instance.withTypeProvider<TypeBoxTypeProvider>();
    healthRoutes(typed, ctx);
    signUpRoutes(typed, ctx);
    marketplaceRoutes(typed, ctx);
    referralPayoutRoutes(typed, ctx);
    payoutOperationRoutes(typed, ctx);
    reconciliationRoutes(typed, ctx);
  });
  // The console has its own hooks, parsers and headers; encapsulated, they never touch the JSON API.
  app.register(async (instance) => consoleRoutes(instance.withTypeProvider<TypeBoxTypeProvider>(), ctx));

  return app;
}

export type TypedApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;
