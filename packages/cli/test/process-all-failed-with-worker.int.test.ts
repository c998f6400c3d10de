import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { httpGateway, processReferralPayouts, referralEarnings } from '@referrals/core';
import { childProcessEnv, confirmedPurchase, readInvariants, seedReferralChain, waitFor } from '@referrals/testing';
import { useTestDatabase, useFakeTreasury } from '@referrals/testing/vitest';
import { REPO_ROOT, runCli } from './run-cli.ts';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });

const treasury = useFakeTreasury();

const FAILED = 24;
const QUEUED = 12;

/** pg-boss's own table: jobs a worker slot has taken and not finished. */
async function activePayoutJobs(): Promise<number> {
  const row = await t.db
    .withSchema('pgboss')
    // pg-boss's schema is not part of ours; the table is read only to observe the worker.
    .selectFrom('job' as never)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('name' as never, '=', 'referral-payouts' as never)
    .where('state' as never, '=', 'active' as never)
    .executeTakeFirst()
    .catch(() => undefined);
  return Number(row?.n ?? 0);
}

describe('--process-all-failed while a payout worker runs', () => {
  it('settles every purchase once: no level is paid twice', async () => {
    const chain = await seedReferralChain(t.db, { price: 10_000 });
    const gateway = httpGateway({ treasuryUrl: treasury.url, timeoutMs: 5000 });

    // Failed purchases whose outbox rows the relay has not published yet: once the worker starts,
    // it takes them as jobs while the CLI retries the very same purchases.
    treasury.setMode({ kind: 'refuse', when: () => true });
    const failed: string[] = [];
    for (let i = 0; i < FAILED; i++) {
      const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
      expect(
        await processReferralPayouts({ db: t.db, gateway, minPayout: 1, logger }, purchase.id, {
          actor: 'worker',
          finalAttempt: true,
        }),
      ).toMatchObject({ status: 'failed' });
      failed.push(purchase.id);
    }
    for (let i = 0; i < QUEUED; i++) await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    treasury.setMode({ kind: 'succeed' });
    treasury.setDelay(20);

    // The CLI goes first and the treasury holds its first transfers, so the CLI holds the leases of
    // the oldest failed purchases, exactly the ones the worker's relay hands to the queue first.
    treasury.hold();
    const env = { DATABASE_URL: t.url, PAYOUT_GATEWAY: 'http', TREASURY_URL: treasury.url };
    // Held transfers must outlast the worker's start on a loaded machine, so they cannot time out first.
    const bulkRun = runCli(['--process-all-failed', '--json', '--concurrency', '4'], {
      ...env,
      TREASURY_TIMEOUT_MS: '60000',
    });
    // Four purchases at once, each sending its two levels together.
    await waitFor(() => treasury.heldCount() === 8, { what: 'the CLI to have 8 transfers in flight' });

    const worker = spawn(process.execPath, ['packages/worker/src/main.ts'], {
      cwd: REPO_ROOT,
      env: childProcessEnv({
        PATH: process.env.PATH ?? '',
        ...env,
        LOG_LEVEL: 'warn',
        WORKER_CONCURRENCY: '4',
        OUTBOX_POLL_INTERVAL_MS: '200',
        PAYOUT_RETRY_DELAY_SECONDS: '1',
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let workerOutput = '';
    worker.stdout.on('data', (chunk: Buffer) => (workerOutput += chunk.toString()));
    worker.stderr.on('data', (chunk: Buffer) => (workerOutput += chunk.toString()));
    const workerExited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));

    try {
      // The worker has taken the oldest jobs: the purchases the CLI is transferring (its slots take
      // batches, so it may hold more).
      await waitFor(async () => (await activePayoutJobs()) >= 4, {
        what: `4 active payout jobs (worker output: ${workerOutput})`,
        timeoutMs: 30_000,
      });
      treasury.release();

      const bulk = await bulkRun;
      expect(bulk.stderr).not.toMatch(/manage-referral-payouts:/);
      expect(bulk.code).toBe(0);
      const report = JSON.parse(bulk.stdout);
      expect(report).toMatchObject({ total: FAILED, completed: FAILED, stillFailed: 0, notApplicable: 0 });

      await waitFor(
        async () => {
          const row = await t.db
            .selectFrom('purchases')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('referral_payout_status', '=', 'completed')
            .executeTakeFirstOrThrow();
          return Number(row.n) === FAILED + QUEUED;
        },
        { what: 'every purchase completed', timeoutMs: 60_000 },
      );
    } finally {
      treasury.release();
      worker.kill('SIGTERM');
      expect(await workerExited).toBe(0);
    }

    // Each purchase went to completed exactly once, by whichever processor got there first.
    const completions = await t.db
      .selectFrom('referral_payout_events')
      .select(['purchase_id', 'actor'])
      .where('to_status', '=', 'completed')
      .execute();
    expect(completions).toHaveLength(FAILED + QUEUED);
    expect(new Set(completions.map((c) => c.purchase_id)).size).toBe(FAILED + QUEUED);
    const by = (actor: string) => completions.filter((c) => c.actor === actor).length;
    // The four the CLI held leases on while the worker's jobs for them waited.
    expect(by('cli')).toBeGreaterThanOrEqual(4);
    expect(by('worker')).toBeGreaterThanOrEqual(QUEUED);
    console.info(
      `completed by the worker: ${by('worker')}, by the CLI: ${by('cli')}; ` +
        `treasury requests: ${treasury.requests.length} for ${treasury.accepted().length} transfers`,
    );

    const invariants = await readInvariants(t.db);
    expect(invariants.doubleCredits).toBe(0);
    expect(invariants.payoutsOverFee).toBe(0);
    expect(invariants.ledgerTotals).toEqual({ EUR: 0 });
    expect(treasury.accepted()).toHaveLength(2 * (FAILED + QUEUED));
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(1000 * (FAILED + QUEUED));
    expect(await referralEarnings(t.db, chain.grand.id)).toBe(500 * (FAILED + QUEUED));
  });
});
