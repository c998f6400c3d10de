/** The test projects: one per package that has tests. */
export const projects = [
  'packages/core',
  'packages/api',
  'packages/worker',
  'packages/cli',
  'packages/launcher',
  'packages/bench',
].map((root) => ({
  extends: true as const,
  test: { name: root.replace('packages/', ''), root, include: ['test/**/*.test.ts', 'src/**/*.test.ts'] },
}));
