import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { childProcessEnv, timeoutScale } from '@referrals/testing';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = 'packages/cli/src/main.ts';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real binary in a child process, from the repository root, as an operator would. */
export function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  command: string[] = ['node', MAIN],
): Promise<CliResult> {
  const [file, ...prefix] = command;
  return new Promise((resolve) => {
    execFile(
      file!,
      [...prefix, ...args],
      {
        cwd: REPO_ROOT,
        env: childProcessEnv(cliEnv(env)),
        timeout: 60_000 * timeoutScale(),
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error && typeof error.code === 'number' ? error.code : error ? null : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The parent's environment minus any payout configuration, plus what the test sets. */
function cliEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [
    'DATABASE_URL',
    'PAYOUT_GATEWAY',
    'TREASURY_URL',
    'TREASURY_TIMEOUT_MS',
    'LOG_LEVEL',
    'REFERRAL_MIN_PAYOUT',
  ])
    delete base[name];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete base[name];
    else base[name] = value;
  }
  return base;
}
