import { spawnSync } from 'node:child_process';

/**
 * Tests that drive an external program (a compose client, Chromium, promtool) run where it is
 * installed and skip with a clear message where it is not, so `pnpm test` needs only Node and pnpm.
 * CI installs every such program and sets REQUIRE_ALL_TOOLS=1, which turns a skip into a failure:
 * there, a missing tool must never pass silently.
 */
export function toolAvailable(tool: string, found: boolean, install: string, env = process.env): boolean {
  if (found) return true;
  if (env.REQUIRE_ALL_TOOLS === '1')
    throw new Error(
      `${tool} is not installed (${install}); REQUIRE_ALL_TOOLS=1 forbids skipping the tests that need it`,
    );
  console.warn(`skipping the tests that need ${tool}: it is not installed (${install})`);
  return false;
}

/** Whether `command args…` runs and exits 0. */
export function commandRuns(command: string, args: string[] = ['--version']): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}
