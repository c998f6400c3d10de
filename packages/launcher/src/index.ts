export * from './embedded-postgres.ts';
export * from './local-setup.ts';
