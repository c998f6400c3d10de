import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import {
  createPurchase,
  type Database,
  getReferralPayoutStatus,
  httpGateway,
  ledgerGateway,
  markReferralPayoutFailed,
  processReferralPayouts,
  referralEarnings,
  setReferralCodeActive,
} from '@referrals/core';
import { confirmedPurchase, readInvariants, type ReferralChain, seedReferralChain } from '@referrals/testing';
import { useTestDatabase, useFakeTreasury } from '@referrals/testing/vitest';
import { runCli } from './run-cli.ts';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });
const STACK_LINE = /^\s+at /m;

const treasury = useFakeTreasury();

// One deployment, one gateway: every command of this file runs as the deployment's http gateway.
const httpEnv = () => ({ DATABASE_URL: t.url, PAYOUT_GATEWAY: 'http', TREASURY_URL: treasury.url });
const env = httpEnv;

/** A confirmed purchase whose payouts the treasury refused until the retries ran out, as the worker leaves it. */
async function failedPurchase(db: Database, chain: ReferralChain): Promise<string> {
  const purchase = await confirmedPurchase(db, chain.buyer.id, chain.content.id);
  const ctx = { db, gateway: httpGateway({ treasuryUrl: treasury.url, timeoutMs: 5000 }), minPayout: 1, logger };
  treasury.setMode({ kind: 'refuse', when: (transfer) => transfer.idempotencyKey.startsWith(purchase.id) });
  expect(await processReferralPayouts(ctx, purchase.id, { actor: 'worker', finalAttempt: true })).toMatchObject({
    status: 'failed',
  });
  treasury.setMode({ kind: 'succeed' });
  return purchase.id;
}

describe('usage and configuration errors', () => {
  it('exits 2 with one line on stderr, without touching the database', async () => {
    const cases: [string[], RegExp][] = [
      [['--bogus'], /Unknown argument: bogus/],
      [[], /give one of --status, --process, --list-failed, --process-all-failed, --summary/],
      [['--status', randomUUID(), '--list-failed'], /give only one command, got --status and --list-failed/],
      [['--status', 'not-a-uuid'], /"not-a-uuid" is not a purchase id/],
      [['--process'], /Not enough arguments following: process/],
      [['--list-failed', '--limit', '501'], /--limit must be an integer from 1 to 500/],
      [['--process-all-failed', '--concurrency', '0'], /--concurrency must be an integer from 1 to 32/],
      [['--summary', '--limit', '5'], /--limit only applies to --list-failed/],
      [['--list-failed', '--limit', 'ten'], /--limit must be an integer from 1 to 500/],
      [['--summary', '--list-failed'], /give only one command, got --summary and --list-failed/],
      [['--write-off', randomUUID()], /--write-off needs --reason/],
      [['--summary', 'extra'], /Unknown argument: extra/],
    ];
    const results = await Promise.all(
      cases.map(([args]) => runCli(args, { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' })),
    );
    results.forEach((result, i) => {
      expect(result.code, cases[i]![0].join(' ')).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(/^manage-referral-payouts: .+\n$/);
      expect(result.stderr).toMatch(cases[i]![1]);
      expect(result.stderr.split('--help" for usage').length, result.stderr).toBeLessThanOrEqual(2);
    });
  });

  it('names the missing variable, and shows a stack only with --verbose', async () => {
    const [missing, noTreasury, unreachable, verbose] = await Promise.all([
      runCli(['--summary'], {}),
      runCli(['--summary'], { DATABASE_URL: t.url, PAYOUT_GATEWAY: 'http' }),
      runCli(['--summary'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }),
      runCli(['--summary', '--verbose'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^manage-referral-payouts: DATABASE_URL is required/);
    expect(noTreasury.code).toBe(2);
    expect(noTreasury.stderr).toMatch(/TREASURY_URL is required/);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toBe(
      'manage-referral-payouts: cannot reach the database named by DATABASE_URL (ECONNREFUSED)\n',
    );
    expect(unreachable.stderr).not.toMatch(STACK_LINE);
    expect(verbose.stderr).toMatch(STACK_LINE);
  });

  it('prints help through npm run and pnpm from the repository root', async () => {
    const [npm, pnpm] = await Promise.all([
      runCli(['--help'], {}, ['npm', 'run', '--silent', 'manage-referral-payouts', '--']),
      runCli(['--help'], {}, ['pnpm', '--silent', 'manage-referral-payouts']),
    ]);
    for (const result of [npm, pnpm]) {
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('Usage: npm run manage-referral-payouts -- <command> [options]');
      expect(result.stdout).toContain('--process-all-failed');
    }
  });
});

describe('one purchase', () => {
  it('--status shows any existing purchase with exit 0, and 3 for an unknown one', async () => {
    const chain = await seedReferralChain(t.db, { price: 10_001 });
    const paid = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    await processReferralPayouts({ db: t.db, gateway: ledgerGateway, minPayout: 1, logger }, paid.id, {
      actor: 'worker',
    });
    const failed = await failedPurchase(t.db, chain);
    const { purchase: pending } = await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id });
    const unknown = randomUUID();

    const [human, json, failedStatus, pendingStatus, missing, missingProcess] = await Promise.all([
      runCli(['--status', paid.id], env()),
      runCli(['--status', paid.id, '--json'], env()),
      runCli(['--status', failed], env()),
      runCli(['--status', pending.id], env()),
      runCli(['--status', unknown], env()),
      runCli(['--process', unknown], env()),
    ]);

    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^Referral payout +completed$/m);
    expect(human.stdout).toMatch(new RegExp(`^direct +${chain.direct.id} +10\\.00% +10\\.00 EUR +paid `, 'm'));
    expect(human.stdout).toMatch(new RegExp(`^grand +${chain.grand.id} +5\\.00% +5\\.00 EUR +paid `, 'm'));
    expect(human.stdout).toMatch(/^Total payouts +15\.00 EUR$/m);
    expect(human.stdout).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC +queued +completed +worker +1/m);

    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(await getReferralPayoutStatus(t.db, paid.id));

    expect(failedStatus.code).toBe(0);
    expect(failedStatus.stdout).toMatch(/^Referral payout +failed$/m);
    expect(failedStatus.stdout).toMatch(/^Last error +direct: treasury answered 500/m);
    expect(pendingStatus.code).toBe(0);
    expect(pendingStatus.stdout).toMatch(/^Referral payout +pending \(not confirmed\)$/m);

    expect(missing.code).toBe(3);
    expect(missing.stderr).toBe(`manage-referral-payouts: purchase ${unknown} not found\n`);
    expect(missingProcess.code).toBe(3);
  });

  it('--process pays a queued purchase once and exits 1 while the treasury keeps refusing', async () => {
    const chain = await seedReferralChain(t.db);
    const queued = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);

    const first = await runCli(['--process', queued.id], env());
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^Paid direct 10\.00 EUR, grand 5\.00 EUR\.$/m);
    expect(first.stdout).toMatch(/^Referral payout +completed$/m);
    const again = await runCli(['--process', queued.id, '--json'], env());
    expect(again.code).toBe(0);
    const document = JSON.parse(again.stdout);
    expect(document.status).toBe('completed');
    expect(document.processed).toEqual({ changed: false, paid: [], error: null });
    expect(document.events.map((e: { actor: string }) => e.actor)).toEqual(['api', 'cli']);
    // The OS account that ran the CLI is the operator in the history.
    expect(document.events[1]).toMatchObject({ to: 'completed', operator: userInfo().username });
    expect(await referralEarnings(t.db, chain.direct.id)).toBe(1000);

    const failed = await failedPurchase(t.db, chain);
    treasury.setMode({ kind: 'refuse', when: (transfer) => transfer.beneficiaryId === chain.grand.id });
    const stillFailing = await runCli(['--process', failed], httpEnv());
    expect(stillFailing.code).toBe(1);
    expect(stillFailing.stdout).toMatch(
      /^Processing failed: referral payout of purchase .+ failed: treasury answered 500/m,
    );
    expect(stillFailing.stdout).toMatch(/^Referral payout +failed$/m);
    expect(stillFailing.stdout).toMatch(/^direct .+ paid /m);

    treasury.setMode({ kind: 'succeed' });
    const repaired = await runCli(['--process', failed], httpEnv());
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toMatch(/^Paid grand 5\.00 EUR\.$/m);

    const { purchase: pending } = await createPurchase(t.db, { buyerId: chain.buyer.id, contentId: chain.content.id });
    const unconfirmed = await runCli(['--process', pending.id], env());
    expect(unconfirmed.code).toBe(1);
    expect(unconfirmed.stderr).toMatch(/^manage-referral-payouts: purchase .+ is not confirmed yet/);
  });
});

describe('failed purchases in bulk', () => {
  it('lists them newest first, retries oldest first past refusals, and exits 1 while any is still failed', async () => {
    // Start from no failures: the earlier tests of this file repaired theirs.
    expect((await runCli(['--process-all-failed'], httpEnv())).code).toBe(0);

    const refusedChain = await seedReferralChain(t.db);
    const goodChain = await seedReferralChain(t.db, { price: 2_999 });
    const inactiveChain = await seedReferralChain(t.db);
    const ids: string[] = [];
    for (const chain of [goodChain, refusedChain, goodChain, refusedChain, goodChain])
      ids.push(await failedPurchase(t.db, chain));
    // Retries spent before any level was decided (the queue's dead letter), then the code was withdrawn.
    const withdrawn = await confirmedPurchase(t.db, inactiveChain.buyer.id, inactiveChain.content.id);
    await markReferralPayoutFailed(t.db, withdrawn.id, 'worker', 'treasury unreachable: connect ECONNREFUSED');
    await setReferralCodeActive(t.db, inactiveChain.directCode.code, false);
    ids.push(withdrawn.id);

    const [list, limited, listJson] = await Promise.all([
      runCli(['--list-failed'], env()),
      runCli(['--list-failed', '--limit', '2'], env()),
      runCli(['--list-failed', '--json'], env()),
    ]);
    expect(list.code).toBe(0);
    const lines = list.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('6 purchases with failed referral payouts:');
    expect(lines[2]).toMatch(/^FAILED AT +PURCHASE +PRICE +ATTEMPTS +LAST ERROR$/);
    const listed = lines.slice(3, 9).map((line) => line.split(/ {2,}/)[1]);
    expect(listed).toEqual([...ids].reverse());
    expect(lines[4]).toMatch(/ 29\.99 EUR +1 +direct: treasury answered 500/);
    expect(lines.at(-2)).toBe('Retry all:  npm run manage-referral-payouts -- --process-all-failed');
    expect(lines.at(-1)).toBe('Retry one:  npm run manage-referral-payouts -- --process <purchase-id>');
    expect(limited.stdout).toMatch(/^6 purchases with failed referral payouts \(2 shown, newest first\):$/m);
    expect(limited.stdout.split('\n').filter((l) => /^\d{4}-/.test(l))).toHaveLength(2);
    const nextPage = /^Next page: {2}npm run manage-referral-payouts -- (--list-failed --limit 2 --cursor \S+)$/m.exec(
      limited.stdout,
    );
    expect(nextPage).not.toBeNull();
    const second = await runCli(nextPage![1]!.split(' '), env());
    expect(second.code).toBe(0);
    expect(
      second.stdout
        .split('\n')
        .filter((l) => /^\d{4}-/.test(l))
        .map((l) => l.split(/ {2,}/)[1]),
    ).toEqual([ids[3], ids[2]]);
    const badCursor = await runCli(['--list-failed', '--cursor', 'bm9wZQ'], env());
    expect(badCursor.code).toBe(2);
    expect(badCursor.stderr).toBe(
      'manage-referral-payouts: cursor is not valid: pass the nextCursor of a previous page\n',
    );
    const page = JSON.parse(listJson.stdout);
    expect(page.total).toBe(6);
    expect(page.items.map((i: { purchaseId: string }) => i.purchaseId)).toEqual([...ids].reverse());

    treasury.setMode({ kind: 'refuse', when: (transfer) => transfer.beneficiaryId === refusedChain.direct.id });
    const seenBefore = treasury.requests.length;
    const bulk = await runCli(['--process-all-failed', '--json', '--concurrency', '1'], httpEnv());
    expect(bulk.code).toBe(1);
    const report = JSON.parse(bulk.stdout);
    expect(report).toMatchObject({ total: 6, completed: 3, stillFailed: 2, notApplicable: 1, notAttempted: 0 });
    expect(report.results.map((r: { purchaseId: string; status: string }) => [r.purchaseId, r.status])).toEqual([
      [ids[0], 'completed'],
      [ids[1], 'failed'],
      [ids[2], 'completed'],
      [ids[3], 'failed'],
      [ids[4], 'completed'],
      [ids[5], 'not_applicable'],
    ]);
    // Oldest first: with one lane the treasury sees the purchases in the order they failed.
    const order = [...new Set(treasury.requests.slice(seenBefore).map((r) => r.idempotencyKey.split(':')[0]))];
    expect(order).toEqual(ids.slice(0, 5));
    expect(bulk.stderr.trimEnd().split('\n')).toHaveLength(6);
    expect(bulk.stderr).toMatch(new RegExp(`^\\[2/6\\] ${ids[1]} failed: treasury answered 500`, 'm'));

    const human = await runCli(['--process-all-failed'], httpEnv());
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^Total +2$/m);
    expect(human.stdout).toMatch(/^Completed +0$/m);
    expect(human.stdout).toMatch(/^Still failed +2$/m);
    expect(human.stdout).toMatch(/^Not applicable +0$/m);
    expect(human.stdout).toContain(`${ids[1]}  treasury answered 500`);
    expect(human.stdout.trimEnd().split('\n').at(-1)).toBe(
      'Retry one:  npm run manage-referral-payouts -- --process <purchase-id>',
    );

    const summary = await runCli(['--summary'], env());
    expect(summary.code).toBe(0);
    expect(summary.stdout).toMatch(/^Failed +2$/m);
    expect(summary.stdout).toMatch(/^Not applicable +1$/m);
    expect(summary.stdout).toMatch(/^Failures +2 in the last hour, 2 in the last day$/m);
    const summaryJson = JSON.parse((await runCli(['--summary', '--json'], env())).stdout);
    expect(summaryJson.counts.failed).toBe(2);
    expect(summaryJson.recentFailures.map((f: { purchaseId: string }) => f.purchaseId).sort()).toEqual(
      [ids[1], ids[3]].sort(),
    );

    treasury.setMode({ kind: 'succeed' });
    const repaired = await runCli(['--process-all-failed'], httpEnv());
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toMatch(/^Completed +2$/m);
    for (const id of [ids[1]!, ids[3]!]) {
      expect((await getReferralPayoutStatus(t.db, id)).events.at(-1)).toMatchObject({
        from: 'failed',
        to: 'completed',
        actor: 'cli',
        operator: userInfo().username,
      });
    }
    const nothing = await runCli(['--process-all-failed'], httpEnv());
    expect(nothing.code).toBe(0);
    expect(nothing.stdout).toBe('No failed referral payouts to process.\n');
    expect((await runCli(['--list-failed'], env())).stdout).toBe('No failed referral payouts.\n');

    // The treasury moved money once for each level of the five repaired purchases and never for the
    // withdrawn one; the ledger credited each of those levels once.
    const keys = treasury
      .accepted()
      .map((a) => a.idempotencyKey)
      .filter((key) => ids.includes(key.split(':')[0]!));
    expect(keys.sort()).toEqual(
      ids
        .slice(0, 5)
        .flatMap((id) => [`${id}:direct`, `${id}:grand`])
        .sort(),
    );
    const credits = await t.db
      .selectFrom('ledger_entries')
      .select('id')
      .where('account', '=', 'referral_earnings')
      .where('purchase_id', 'in', ids)
      .execute();
    expect(credits).toHaveLength(10);
    const invariants = await readInvariants(t.db);
    expect(invariants).toMatchObject({ doubleCredits: 0, paidWithoutCredit: 0, payoutsOverFee: 0 });
    expect(invariants.ledgerTotals).toEqual({ EUR: 0 });
    expect(await referralEarnings(t.db, refusedChain.direct.id)).toBe(2 * 1000);
    // Fifteen CLI processes one after another: on a loaded machine each start takes seconds.
  }, 180_000);
});
