import { defineConfig } from 'vitest/config';

/**
 * The tests `pnpm test:mutation` runs against each mutant of core's payout, purchase, outbox and
 * ledger modules: core's own. Tests of spawned processes (CLI, worker and API entries) could not
 * kill a mutant, since a child process runs the unmutated code; the API's and the worker's
 * in-process tests are left out for time (on 2 cores they made one pass take minutes per mutant).
 */
export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'core',
          root: 'packages/core',
          include: ['test/**/*.test.ts'],
          // Reconciles 100k transfers to measure the heap (~16 s); it seeds through confirm, so every
          // confirm mutant would pay for it. reconcile.int.test.ts runs the same code on small books.
          exclude: ['test/reconcile-paging.int.test.ts'],
        },
      },
    ],
    globalSetup: ['./packages/testing/src/global-setup.ts'],
    // Mutants fail tests on purpose: their databases are dropped instead of kept for inspection.
    env: { TEST_KEEP_FAILED_DATABASES: '0' },
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
