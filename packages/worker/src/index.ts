export * from './queues.ts';
export * from './relay.ts';
export * from './payout-handler.ts';
export * from './metrics.ts';
export * from './worker.ts';
export * from './database-availability.ts';
