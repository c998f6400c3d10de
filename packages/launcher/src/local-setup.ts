import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '@referrals/core';

/** Local state of `pnpm start` and `pnpm demo`: the embedded database and the tokens. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** `.data` at the repository root, or REFERRALS_DATA_DIR. */
export function dataDirectory(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env.REFERRALS_DATA_DIR?.trim();
  return configured ? resolve(configured) : join(REPO_ROOT, '.data');
}

/** The credentials `pnpm start` makes once and keeps: the admin token and the marketplace's service token. */
export type LocalToken = 'admin' | 'service';

export const tokenFile = (dataDir: string, kind: LocalToken) => join(dataDir, `${kind}-token`);

export function readToken(dataDir: string, kind: LocalToken): string | undefined {
  try {
    const token = readFileSync(tokenFile(dataDir, kind), 'utf8').trim();
    return token === '' ? undefined : token;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The token made on the first start, so every later start and `pnpm demo` use the same one. */
export function readOrCreateToken(dataDir: string, kind: LocalToken): { token: string; file: string } {
  const file = tokenFile(dataDir, kind);
  const existing = readToken(dataDir, kind);
  if (existing) return { token: existing, file };
  const token = randomBytes(24).toString('base64url');
  try {
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    return { token, file };
  } catch (error) {
    // Another start wrote it first: theirs is the one.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return { token: readToken(dataDir, kind)!, file };
    throw error;
  }
}

/**
 * The URL a client on this machine reaches the API at: HOST and PORT as `pnpm start` gives them to
 * the API, with a wildcard bind address replaced by loopback.
 */
export function apiBaseUrl(config: Pick<Config, 'host' | 'port'>): string {
  const { host } = config;
  const reachable =
    host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  return `http://${reachable}:${config.port}`;
}
