/**
 * The environment for a process a test spawns (CLI, worker, API, launcher). `pnpm test:coverage`
 * sets CHILD_V8_COVERAGE to a directory; each child then writes its V8 coverage there on exit, to
 * be merged with the coverage of the test processes themselves. The variable is forwarded under
 * its own name because the test processes must not write raw coverage of code vitest transformed.
 */
export function childProcessEnv<T extends Record<string, string | undefined>>(
  env: T,
): T & { NODE_V8_COVERAGE?: string } {
  const dir = process.env.CHILD_V8_COVERAGE;
  return dir ? { ...env, NODE_V8_COVERAGE: dir } : env;
}
