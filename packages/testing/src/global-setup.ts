import type { TestProject } from 'vitest/node';
import { dropStaleDatabases, prepareTemplate, startPostgres } from './postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresAdminUrl: string;
    postgresTemplate: string;
  }
}

/** Runs once per test run: a Postgres server, and a migrated template every test file clones. */
export default async function setup(project: TestProject) {
  const server = await startPostgres();
  console.log(`tests: ${server.description}`);
  await dropStaleDatabases(server.adminUrl);
  const template = await prepareTemplate(server.adminUrl);
  project.provide('postgresAdminUrl', server.adminUrl);
  project.provide('postgresTemplate', template);
  return () => server.stop();
}
