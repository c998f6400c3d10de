import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { childProcessEnv, freePort, startThrowawayPostgres, waitFor } from '@referrals/testing';
import { apiClient } from '../src/api-client.ts';
import { REPO_ROOT } from '../src/local-setup.ts';

/**
 * `pnpm start` end to end: the real entry, a real embedded Postgres in a temporary data directory,
 * the real API and worker, then SIGINT and a look at the process table.
 */

/** Every process below `root`, read from /proc (postgres backends included). */
function descendants(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name may contain spaces and parentheses; the fields after the last ')' do not.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(entry), ppid);
    } catch {
      // Gone meanwhile.
    }
  }
  const found: number[] = [];
  const frontier = [root];
  while (frontier.length > 0) {
    const parent = frontier.pop()!;
    for (const [pid, ppid] of parentOf) {
      if (ppid === parent) {
        found.push(pid);
        frontier.push(pid);
      }
    }
  }
  return found;
}

function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Processes whose command line mentions `text` (the data directory, for postgres). */
function processesMentioning(text: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .filter((entry) => {
      try {
        return readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text) && running(Number(entry));
      } catch {
        return false;
      }
    })
    .map(Number);
}

interface Launch {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function launch(env: NodeJS.ProcessEnv, entry = 'start.ts'): Launch {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, LOG_LEVEL: 'warn' };
  if (env.DATABASE_URL === undefined) delete childEnv.DATABASE_URL;
  delete childEnv.ADMIN_API_TOKEN;
  const child = spawn(process.execPath, [join(REPO_ROOT, 'packages/launcher/src', entry)], {
    cwd: REPO_ROOT,
    env: childProcessEnv(childEnv),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function untilRunning(run: Launch): Promise<void> {
  await waitFor(
    () => {
      if (run.child.exitCode !== null) throw new Error(`launcher exited ${run.child.exitCode}:\n${run.output()}`);
      return run.output().includes('Referral payouts is running.');
    },
    { timeoutMs: 90_000, intervalMs: 100, what: 'the launcher to report the API ready' },
  );
}

/** SIGINT, then: exit code 0 and none of the processes it had started is left. */
async function interruptAndCheckNothingLeft(run: Launch, dataDir: string): Promise<void> {
  const started = descendants(run.child.pid!);
  expect(started.length).toBeGreaterThanOrEqual(4); // postgres helper + postgres (+ backends), api, worker
  run.child.kill('SIGINT');
  expect(await run.exited, run.output()).toBe(0);
  expect(run.output()).toContain('stopped.');
  expect(started.filter(running)).toEqual([]);
  expect(processesMentioning(dataDir)).toEqual([]);
}

describe('pnpm start with the embedded Postgres', () => {
  // The postgres user (used when running as root) must be able to enter every parent: 0755, not mkdtemp's 0700.
  const dataDir = mkdtempSync('/tmp/referrals-launcher-');
  chmodSync(dataDir, 0o755);
  const runs: Launch[] = [];

  afterAll(async () => {
    for (const run of runs) {
      if (run.child.exitCode === null) {
        run.child.kill('SIGTERM');
        await run.exited;
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves the API, pays referrals, stops cleanly on SIGINT, keeps the data for the next start, and stops when a child dies', async () => {
    const [pgPort, apiPort] = [await freePort(), await freePort()];
    const env = { REFERRALS_DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), PORT: String(apiPort) };

    const first = launch(env);
    runs.push(first);
    await untilRunning(first);
    expect(first.output()).toContain('created a new database cluster');
    expect(existsSync(join(dataDir, 'postgres', 'PG_VERSION'))).toBe(true);

    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    expect(first.output()).toMatch(new RegExp(`^  Admin token +${token}  \\(kept in `, 'm'));
    // One banner, with every address; the worker's metrics answer where it says.
    expect(first.output().split('Referral payouts is running.')).toHaveLength(2);
    expect(first.output()).toMatch(new RegExp(`^  API docs +http://127\\.0\\.0\\.1:${apiPort}/docs$`, 'm'));
    const workerMetrics = /^ {2}Worker metrics +(http:\S+)$/m.exec(first.output())?.[1];
    expect(workerMetrics).toBeDefined();
    expect(await (await fetch(workerMetrics!)).text()).toContain('referral_outbox_published_total');
    expect(first.output()).toMatch(
      new RegExp(`^  Console +http://127\\.0\\.0\\.1:${apiPort}/console  \\(sign in with the admin token\\)$`, 'm'),
    );
    expect((await fetch(`http://127.0.0.1:${apiPort}/console/sign-in`)).status).toBe(200);
    const api = apiClient(`http://127.0.0.1:${apiPort}`, {
      service: readFileSync(join(dataDir, 'service-token'), 'utf8').trim(),
      admin: token,
    });

    const tag = randomBytes(3).toString('hex');
    const grand = await api.signUp(`grand_${tag}`);
    const grandCode = await api.createReferralCode(grand.id);
    const direct = await api.signUp(`direct_${tag}`, grandCode.code);
    const directCode = await api.createReferralCode(direct.id);
    const buyer = await api.signUp(`buyer_${tag}`, directCode.code);
    const creator = await api.signUp(`creator_${tag}`);
    const content = await api.createContent(creator.id, 'Bread at home', 10_000, 'EUR');
    const pending = await api.createPurchase(buyer.id, content.id);
    const confirmed = await api.confirmPurchase(pending.id, `pay_${tag}`);
    expect(confirmed.referralPayoutStatus).toBe('queued');
    // The marketplace's own credential, made and printed beside the admin token, reads the purchase;
    // nothing does without a credential.
    const serviceToken = readFileSync(join(dataDir, 'service-token'), 'utf8').trim();
    expect(first.output()).toMatch(new RegExp(`^  Service token +${serviceToken}  `, 'm'));
    const purchaseUrl = `http://127.0.0.1:${apiPort}/api/marketplace/purchase/${pending.id}`;
    expect((await fetch(purchaseUrl, { headers: { authorization: `Bearer ${serviceToken}` } })).status).toBe(200);
    expect((await fetch(purchaseUrl)).status).toBe(401);

    const settled = await waitFor(
      async () => {
        const status = await api.payoutStatus(pending.id);
        return status.status === 'completed' && status;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'the referral payout to complete' },
    );
    expect(settled.payouts.map((p) => [p.level, p.beneficiaryId, p.amount]).sort()).toEqual([
      ['direct', direct.id, 1000],
      ['grand', grand.id, 500],
    ]);

    // `pnpm demo` reads the same environment: PORT and the kept admin token find this system.
    const demo = launch(env, 'demo.ts');
    expect(await demo.exited, demo.output()).toBe(0);
    expect(demo.output()).toContain(`Referral chain (through http://127.0.0.1:${apiPort}):`);
    expect(demo.output()).toMatch(/completed: paid direct 1\.20 EUR, grand 0\.60 EUR/);

    await interruptAndCheckNothingLeft(first, dataDir);

    const second = launch(env);
    runs.push(second);
    await untilRunning(second);
    expect(second.output()).toContain('using the existing database cluster');
    expect(second.output()).toMatch(new RegExp(`^  Admin token +${token}  `, 'm'));
    const again = await api.getPurchase(pending.id);
    expect(again).toMatchObject({ id: pending.id, status: 'confirmed', referralPayoutStatus: 'completed' });

    // A child that dies on its own takes the others down, and the launcher says so with its exit code.
    const started = descendants(second.child.pid!);
    const worker = started.find((pid) =>
      readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('packages/worker/src/main.ts'),
    );
    expect(worker).toBeDefined();
    process.kill(worker!, 'SIGKILL');
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain('the worker exited unexpectedly');
    expect(started.filter(running)).toEqual([]);
    expect(processesMentioning(dataDir)).toEqual([]);
  }, 300_000); // two starts, a demo and two stops of real processes, on a loaded machine
});

describe('pnpm start with a DATABASE_URL whose server is down at first', () => {
  it('waits for it with one line, migrates once it answers, and runs', async () => {
    const postgres = await startThrowawayPostgres();
    const dataDir = mkdtempSync('/tmp/referrals-launcher-external-');
    let run: Launch | undefined;
    try {
      await postgres.stop('fast');
      run = launch({ DATABASE_URL: postgres.url(), REFERRALS_DATA_DIR: dataDir, PORT: String(await freePort()) });
      const line = `the database at ${postgres.url()} cannot be reached`;
      await waitFor(() => run!.output().includes(line), { what: 'the launcher to report the database down' });
      expect(run.output()).toMatch(/cannot be reached \(connect ECONNREFUSED [^)]+\); retrying until it answers/);

      await postgres.start();
      await untilRunning(run);
      expect(run.output().split(line)).toHaveLength(2);
      expect(run.output()).toMatch(/^the database answers now \(after \d+ s\)$/m);
      expect(run.output()).toMatch(/^applied migrations 0001_schema, /m);
      run.child.kill('SIGINT');
      expect(await run.exited, run.output()).toBe(0);
    } finally {
      if (run && run.child.exitCode === null) {
        run.child.kill('SIGKILL');
        await run.exited;
      }
      await postgres.destroy();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
