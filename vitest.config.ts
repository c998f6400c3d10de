import { defineConfig } from 'vitest/config';
import { projects } from './vitest.workspace.ts';

export default defineConfig({
  test: {
    projects,
    globalSetup: ['./packages/testing/src/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    passWithNoTests: true,
    // Two cores: files that start worker processes compete for CPU with the database.
    maxWorkers: 2,
  },
});
