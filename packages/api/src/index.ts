export { type AppDeps, BODY_LIMIT_BYTES, buildApp } from './app.ts';
export { type ApiMetrics, createApiMetrics } from './metrics.ts';
