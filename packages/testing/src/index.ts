export * from './postgres.ts';
export * from './wait.ts';
export * from './factories.ts';
export * from './invariants.ts';
export * from './fake-treasury.ts';
export * from './throwaway-postgres.ts';
export * from './treasury-scenarios.ts';
export * from './tools.ts';
