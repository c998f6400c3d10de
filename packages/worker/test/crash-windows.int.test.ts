import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import {
  confirmPurchase,
  createPurchase,
  getReferralPayoutStatus,
  httpGateway,
  processReferralPayouts,
} from '@referrals/core';
import {
  type FakeTreasury,
  forgetPayoutGateway,
  readInvariants,
  seedReferralChain,
  startFakeTreasury,
  waitFor,
} from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import {
  doublePayouts,
  jobsPerPurchase,
  killAll,
  queuedPurchases,
  spawnWorker,
  waitForStatus,
  type WorkerProcess,
  workerEnv,
} from './support.ts';

/*
 * Each test opens one window in which a worker process can die or stall, holds it open with a
 * database lock or a treasury that does not answer, and then checks that nothing was lost or paid
 * twice once another processor has finished the work.
 */

const t = useTestDatabase();
const silent = pino({ level: 'silent' });
let processes: WorkerProcess[] = [];
let treasury: FakeTreasury | undefined;
let holder: pg.Client | undefined;

// Each test runs a deployment of its own, with its own gateway.
beforeEach(() => forgetPayoutGateway(t.db));

afterEach(async () => {
  for (const p of processes) if (p.child.signalCode === 'SIGSTOP') p.child.kill('SIGCONT');
  await killAll(processes);
  processes = [];
  await holder?.end();
  holder = undefined;
  await treasury?.close();
  treasury = undefined;
});

function start(env: Record<string, string>): WorkerProcess {
  const worker = spawnWorker(env);
  processes.push(worker);
  return worker;
}

const httpEnv = (overrides: Record<string, string> = {}) =>
  workerEnv(t.url, {
    PAYOUT_GATEWAY: 'http',
    TREASURY_URL: treasury!.url,
    TREASURY_TIMEOUT_MS: '1000',
    PAYOUT_RETRY_DELAY_SECONDS: '0',
    ...overrides,
  });

/** A transaction on its own connection that takes `lock` and keeps it until released. */
async function holdLock(lock: string): Promise<() => Promise<void>> {
  holder = new pg.Client({ connectionString: t.url, application_name: 'crash-window-holder' });
  await holder.connect();
  await holder.query('begin');
  await holder.query(lock);
  const client = holder;
  return async () => void (await client.query('commit'));
}

/** Backends of worker processes waiting on a lock while running `statement`. */
async function blockedOn(statement: RegExp): Promise<number> {
  const { rows } = await sql<{ query: string }>`select query from pg_stat_activity
    where datname = current_database() and application_name = 'referral-payouts-worker' and wait_event_type = 'Lock'`.execute(
    t.db,
  );
  return rows.filter((r) => statement.test(r.query)).length;
}

/** Waits until the dead process's backends are gone, so whatever its transactions did is final. */
async function backendsGone(): Promise<void> {
  await waitFor(
    async () => {
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
      where datname = current_database() and application_name in ('referral-payouts-worker', 'referral-payouts-relay')`.execute(
        t.db,
      );
      return rows[0]!.n === 0;
    },
    { what: "the killed worker's backends to end" },
  );
}

async function referralCredits(purchaseId: string): Promise<[string, number][]> {
  const rows = await t.db
    .selectFrom('ledger_entries')
    .select(['user_id', 'amount'])
    .where('purchase_id', '=', purchaseId)
    .where('account', '=', 'referral_earnings')
    .orderBy('amount', 'desc')
    .execute();
  return rows.map((r) => [r.user_id!, Number(r.amount)]);
}

/** Every level recorded paid with the reference of the one transfer the treasury accepted for its key. */
async function expectRecordedAsAccepted(purchaseId: string): Promise<void> {
  const accepted = treasury!.accepted().filter((a) => a.idempotencyKey.startsWith(`${purchaseId}:`));
  expect(accepted.map((a) => [a.idempotencyKey, a.amount]).sort()).toEqual([
    [`${purchaseId}:direct`, 1000],
    [`${purchaseId}:grand`, 500],
  ]);
  const status = await getReferralPayoutStatus(t.db, purchaseId);
  expect(status.payouts.map((p) => [p.level, p.status, p.reference])).toEqual(
    ['direct', 'grand'].map((level) => [
      level,
      'paid',
      accepted.find((a) => a.idempotencyKey === `${purchaseId}:${level}`)!.reference,
    ]),
  );
  expect((await referralCredits(purchaseId)).map(([, amount]) => amount)).toEqual([1000, 500]);
}

async function payoutJobState(purchaseId: string): Promise<string | undefined> {
  const { rows } = await sql<{
    state: string;
  }>`select state from pgboss.job where name = 'referral-payouts' and id = ${purchaseId}`.execute(t.db);
  return rows[0]?.state;
}

describe('a worker killed with an outbox batch half published', () => {
  it('publishes nothing of it; the next worker publishes and pays each purchase once', async () => {
    const first = start(workerEnv(t.url, { LOG_LEVEL: 'info' }));
    await waitFor(() => first.output().includes('worker started'), { what: 'worker start', timeoutMs: 30_000 });

    // The relay claims the rows and then waits to insert their jobs: its transaction is open.
    const release = await holdLock('lock table pgboss.job in exclusive mode');
    // Confirmed in one transaction, so the relay finds all twenty in its first claim.
    const chain = await seedReferralChain(t.db);
    const pending = await Promise.all(
      Array.from({ length: 20 }, () => createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id })),
    );
    const ids = pending.map((p) => p.purchase.id);
    await t.db.transaction().execute(async (trx) => {
      for (const purchaseId of ids)
        await confirmPurchase(trx, { purchaseId, paymentReference: `pay_${purchaseId}` }, { platformFeeBps: 3000 });
    });
    await waitFor(async () => (await blockedOn(/insert into/i)) > 0, { what: 'the relay to wait on the job insert' });
    const claimable = await t.db
      .transaction()
      .execute((trx) =>
        trx.selectFrom('outbox').select('id').where('published_at', 'is', null).forUpdate().skipLocked().execute(),
      );
    expect(claimable).toEqual([]);

    first.child.kill('SIGKILL');
    await first.exited;
    await release();
    await backendsGone();

    const unpublished = await t.db
      .selectFrom('outbox')
      .select('aggregate_id')
      .where('published_at', 'is', null)
      .execute();
    expect(unpublished.map((r) => r.aggregate_id).sort()).toEqual([...ids].sort());
    expect(await jobsPerPurchase(t.db, ids)).toEqual({ jobs: 0, distinct: 0 });

    start(workerEnv(t.url));
    await waitForStatus(t.db, ids, 'completed');
    expect(await jobsPerPurchase(t.db, ids)).toEqual({ jobs: 20, distinct: 20 });
    expect(await t.db.selectFrom('outbox').select('id').where('published_at', 'is', null).execute()).toEqual([]);
    expect(await doublePayouts(t.db)).toBe(0);
    expect((await readInvariants(t.db)).ledgerTotals).toEqual({ EUR: 0 });
  });
});

describe('a worker killed between the treasury answer and the commit that records it', () => {
  it('leaves the level unrecorded; the retry gets the same transfer back and records it once', async () => {
    treasury = await startFakeTreasury();
    const [id] = await queuedPurchases(t.db, 1);
    // The answer is recorded with the ledger credit, in one statement; this lock keeps it from committing.
    const release = await holdLock('lock table ledger_entries in exclusive mode');
    const first = start(httpEnv());
    await waitFor(async () => (await blockedOn(/insert into "?ledger_entries/i)) > 0, {
      what: 'the worker to record the answer',
    });
    // The treasury has moved money for the level (or both, if the first recording gave up waiting).
    const answered = treasury
      .accepted()
      .map((a) => a.idempotencyKey)
      .filter((key) => key.startsWith(`${id}:`));
    expect(answered.length).toBeGreaterThan(0);

    // The process dies and its connections with it. Postgres notices a vanished client only when it
    // next talks to it, so a statement already sent would still commit once the lock is free: the
    // crash being tested is the one whose connection is gone before the commit, as when the machine
    // itself goes away.
    first.child.kill('SIGKILL');
    await first.exited;
    await sql`select pg_terminate_backend(pid) from pg_stat_activity
      where datname = current_database() and application_name = 'referral-payouts-worker'`.execute(t.db);
    await release();
    await backendsGone();
    const unrecorded = await getReferralPayoutStatus(t.db, id!);
    expect(unrecorded.status).toBe('queued');
    expect(unrecorded.payouts.map((p) => p.level)).toEqual(['direct', 'grand']);
    expect(unrecorded.payouts.filter((p) => p.status === 'paid')).toEqual([]);
    expect(await referralCredits(id!)).toEqual([]);

    // The job comes back once its heartbeat is missed, and the purchase's lease has run out.
    start(httpEnv());
    await waitForStatus(t.db, [id!], 'completed');
    // Each answered transfer was sent again with its key and recorded as the one the treasury holds.
    for (const key of answered) expect(treasury.requestsFor(key)).toBeGreaterThanOrEqual(2);
    await expectRecordedAsAccepted(id!);
    expect(await doublePayouts(t.db)).toBe(0);
  });
});

describe('a worker stopped past its lease while its transfer is in flight', () => {
  it('lets another processor pay; the stopped worker, resumed, neither pays again nor overwrites the result', async () => {
    // Records each transfer when it arrives and does not answer for ten minutes.
    treasury = await startFakeTreasury({ kind: 'slow', delayMs: 600_000 });
    const [id] = await queuedPurchases(t.db, 1);
    const stopped = start(httpEnv({ PAYOUT_RETRY_LIMIT: '3' }));
    await waitFor(() => treasury!.requestsFor(`${id}:direct`) === 1, {
      what: "the worker's transfer to reach the treasury",
    });
    stopped.child.kill('SIGSTOP');

    // Another processor may take the purchase once the lease has run out by the database's clock.
    await waitFor(
      async () => {
        const row = await t.db
          .selectFrom('purchases')
          .select(sql<boolean>`referral_payout_lease_until < now()`.as('expired'))
          .where('id', '=', id!)
          .executeTakeFirstOrThrow();
        return row.expired;
      },
      { what: 'the lease to expire' },
    );
    treasury.setMode({ kind: 'succeed' });
    const gateway = httpGateway({ treasuryUrl: treasury.url, timeoutMs: 1000 });
    const outcome = await processReferralPayouts({ db: t.db, gateway, minPayout: 1, logger: silent }, id!, {
      actor: 'admin-api',
    });
    expect([outcome.status, outcome.changed, outcome.paid.map((p) => p.level)]).toEqual([
      'completed',
      true,
      ['direct', 'grand'],
    ]);

    // Resumed, the worker finds its request timed out, records nothing over the result, and its
    // retry finds the purchase settled.
    stopped.child.kill('SIGCONT');
    await waitFor(() => stopped.output().includes('referral payout attempt failed'), {
      what: 'the resumed worker to fail its attempt',
    });
    await waitFor(async () => (await payoutJobState(id!)) === 'completed', {
      what: "the resumed worker's job to complete",
    });

    expect(treasury.requestsFor(`${id}:direct`)).toBe(2);
    expect(treasury.requestsFor(`${id}:grand`)).toBe(2);
    await expectRecordedAsAccepted(id!);
    const status = await getReferralPayoutStatus(t.db, id!);
    expect([status.status, status.attempts, status.lastError]).toEqual(['completed', 1, null]);
    expect(status.events.map((e) => [e.from, e.to, e.actor, e.attempt])).toEqual([
      [null, 'queued', 'api', 0],
      ['queued', 'completed', 'admin-api', 1],
    ]);
    expect(await doublePayouts(t.db)).toBe(0);
  });
});

describe('retries running out with the worker that held the last attempt', () => {
  it('dead-letters the job, leaves the purchase failed with the reason, and a repair then pays it once', async () => {
    treasury = await startFakeTreasury({ kind: 'hang' });
    const [id] = await queuedPurchases(t.db, 1);
    // No retry after the first attempt: the attempt the killed worker held was the last one.
    const env = httpEnv({ PAYOUT_RETRY_LIMIT: '0', TREASURY_TIMEOUT_MS: '5000' });
    const first = start(env);
    await waitFor(() => treasury!.inFlight > 0, { what: 'a transfer in flight' });
    first.child.kill('SIGKILL');
    await first.exited;

    // The next worker's supervisor sees the missed heartbeat; pg-boss fails the job, has no retry
    // left and hands it to the dead-letter queue, whose handler marks the purchase failed.
    start(env);
    await waitForStatus(t.db, [id!], 'failed', 90_000);
    const failed = await getReferralPayoutStatus(t.db, id!);
    expect(failed).toMatchObject({ status: 'failed', attempts: 0 });
    expect(failed.lastError).toMatch(/heartbeat/);
    expect(failed.events.map((e) => [e.from, e.to, e.actor])).toEqual([
      [null, 'queued', 'api'],
      ['queued', 'failed', 'worker'],
    ]);
    // One dead-letter job for the purchase, which its handler completes.
    const deadLetters = async () =>
      (
        await sql<{ state: string }>`select state from pgboss.job
        where name = 'referral-payouts-dead-letter' and data->>'purchaseId' = ${id!}`.execute(t.db)
      ).rows.map((r) => r.state);
    await waitFor(async () => (await deadLetters()).includes('completed'), { what: 'the dead-letter job to complete' });
    expect(await deadLetters()).toEqual(['completed']);
    expect(treasury.accepted()).toEqual([]);

    treasury.setMode({ kind: 'succeed' });
    const gateway = httpGateway({ treasuryUrl: treasury.url, timeoutMs: 1000 });
    const repaired = await processReferralPayouts({ db: t.db, gateway, minPayout: 1, logger: silent }, id!, {
      actor: 'cli',
    });
    expect(repaired.status).toBe('completed');
    await expectRecordedAsAccepted(id!);
  }, 150_000);
});
