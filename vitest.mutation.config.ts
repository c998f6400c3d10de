import { defineConfig } from 'vitest/config';

/**
 * The tests `pnpm test:mutation` runs against each mutant of core's payout, purchase, outbox and
 * ledger modules: core's own. Tests of spawned processes (CLI, worker and API entries) could not
 * kill a mutant, since a child process runs the unmutated code; the API's and the worker's
 * in-process tests are left out for time (on 2 cores they made one pass take minutes per mutant).
 */
export default defineConfig({
  test: {
    projects: [{ extends: true, test: { name: 'core', root: 'packages/core', include: ['test/**/*.test.ts'] } }],
    globalSetup: ['./packages/testing/src/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
