import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { httpGateway, ledgerGateway, type PayoutContext, processReferralPayouts } from '@referrals/core';
import {
  failedAfterLostAnswers,
  type FakeTreasury,
  forgetPayoutGateway,
  paidReferralPurchase,
  queuedReferralPurchase,
  startFakeTreasury,
} from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { runCli } from './run-cli.ts';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });
let treasury: FakeTreasury;
let payouts: PayoutContext;
// Each test reconciles the window that starts when it does, so earlier tests' payouts stay out of it.
let since: string;

beforeAll(async () => {
  treasury = await startFakeTreasury();
});
afterAll(() => treasury.close());
beforeEach(async () => {
  // Each test is a deployment of its own (one reconciles a ledger deployment, the others http).
  await forgetPayoutGateway(t.db);
  since = new Date().toISOString();
  treasury.setMode({ kind: 'succeed' });
  payouts = { db: t.db, gateway: httpGateway({ treasuryUrl: treasury.url, timeoutMs: 5_000 }), minPayout: 1, logger };
});

const httpEnv = () => ({
  DATABASE_URL: t.url,
  PAYOUT_GATEWAY: 'http',
  TREASURY_URL: treasury.url,
  TREASURY_TIMEOUT_MS: '5000',
});

const paid = () => paidReferralPurchase(payouts);
const lostAnswers = () => failedAfterLostAnswers(payouts, treasury);

describe('--reconcile', () => {
  it('exits 0 and says so when every payout agrees with the treasury', async () => {
    await paid();
    const result = await runCli(['--reconcile', '--since', since], httpEnv());
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Reconciliation of referral payouts with the treasury \(http gateway\)$/m);
    expect(result.stdout).toMatch(/^Treasury transfers +2$/m);
    expect(result.stdout).toMatch(/^Recorded levels +2$/m);
    expect(result.stdout).toMatch(/^Drift +none$/m);
  });

  it('groups each kind of drift with amounts and exits 1; --json prints the report', async () => {
    const lost = await lostAnswers();
    const forgotten = await paid();
    const changed = await paid();
    treasury.forget(`${forgotten}:direct`);
    treasury.alter(`${changed}:grand`, { amount: 450 });
    const requests = treasury.requestCount;

    const [human, json] = await Promise.all([
      runCli(['--reconcile', '--since', since], httpEnv()),
      runCli(['--reconcile', '--since', since, '--json'], httpEnv()),
    ]);

    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^Drift +4 \(unrecorded transfer 2, missing at treasury 1, mismatch 1\)$/m);
    expect(human.stdout).toMatch(/^Unrecorded transfers: .* \(2\)$/m);
    expect(human.stdout).toMatch(new RegExp(`^${lost} +direct +10\\.00 EUR failed +10\\.00 EUR +tr_\\S+ +yes$`, 'm'));
    expect(human.stdout).toMatch(/^Missing at the treasury: .* \(1\)$/m);
    expect(human.stdout).toMatch(
      new RegExp(`^${forgotten} +direct +10\\.00 EUR +tr_\\S+ +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC$`, 'm'),
    );
    expect(human.stdout).toMatch(new RegExp(`^${changed} +grand +5\\.00 EUR paid +4\\.50 EUR +amount$`, 'm'));
    expect(human.stdout).toMatch(/^2 unrecorded transfers match the level we planned/m);

    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout);
    expect(Object.keys(report).sort()).toEqual(
      [
        'checkedAt',
        'drift',
        'driftCounts',
        'driftTruncated',
        'fixed',
        'fixedCount',
        'gateway',
        'note',
        'recordedLevels',
        'since',
        'treasuryTransfers',
      ].sort(),
    );
    expect(report).toMatchObject({
      since,
      treasuryTransfers: 5,
      recordedLevels: 6,
      fixed: [],
      driftCounts: { unrecorded_transfer: 2, missing_at_treasury: 1, mismatch: 1 },
    });
    expect(
      report.drift.map((d: { kind: string; idempotencyKey: string }) => `${d.kind} ${d.idempotencyKey}`).sort(),
    ).toEqual(
      [
        `unrecorded_transfer ${lost}:direct`,
        `unrecorded_transfer ${lost}:grand`,
        `missing_at_treasury ${forgotten}:direct`,
        `mismatch ${changed}:grand`,
      ].sort(),
    );
    // Reconciliation only reads: the treasury received no transfer.
    expect(treasury.requestCount).toBe(requests);
  });

  it('--fix records the lost answers as paid without sending anything, exits 0, and a second --fix changes nothing', async () => {
    const lost = await lostAnswers();
    const requests = treasury.requestCount;
    const fixed = await runCli(['--reconcile', '--since', since, '--fix'], httpEnv());
    expect(fixed.stderr).toBe('');
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toMatch(/^Drift +none$/m);
    expect(fixed.stdout).toMatch(/^Recorded as paid, as the treasury paid them \(no money sent\) \(2\)$/m);
    expect(fixed.stdout).toMatch(new RegExp(`^${lost} +direct +10\\.00 EUR +tr_\\S+ +(failed|completed)$`, 'm'));
    expect(fixed.stdout).toMatch(new RegExp(`^${lost} +grand +5\\.00 EUR +tr_\\S+ +(failed|completed)$`, 'm'));
    expect(treasury.requestCount).toBe(requests);

    const status = await runCli(['--status', lost, '--json'], httpEnv());
    const view = JSON.parse(status.stdout);
    expect(view).toMatchObject({ status: 'completed', reason: 'reconciled' });
    expect(view.events.filter((e: { actor: string }) => e.actor === 'cli')).toHaveLength(2);

    const again = await runCli(['--reconcile', '--since', since, '--fix', '--json'], httpEnv());
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ drift: [], fixed: [], fixedCount: 0 });
    expect(JSON.parse((await runCli(['--status', lost, '--json'], httpEnv())).stdout).events).toHaveLength(
      view.events.length,
    );
    expect(treasury.requestCount).toBe(requests);
  });

  it('--fix exits 1 while drift it may not repair remains', async () => {
    const lost = await lostAnswers();
    const forgotten = await paid();
    treasury.forget(`${forgotten}:grand`);
    const result = await runCli(['--reconcile', '--since', since, '--fix', '--json'], httpEnv());
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report.fixed.map((f: { purchaseId: string }) => f.purchaseId)).toEqual([lost, lost]);
    expect(report.drift.map((d: { kind: string; purchaseId: string }) => [d.kind, d.purchaseId])).toEqual([
      ['missing_at_treasury', forgotten],
    ]);
  });

  it('reports the ledger gateway as having nothing to compare', async () => {
    const id = await queuedReferralPurchase(t.db);
    await processReferralPayouts({ ...payouts, gateway: ledgerGateway }, id, { actor: 'worker' });
    const result = await runCli(['--reconcile', '--since', since], { DATABASE_URL: t.url });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Reconciliation of referral payouts with the treasury \(ledger gateway\)$/m);
    expect(result.stdout).toMatch(
      /^Nothing to compare: payouts go through the ledger gateway: .*no external treasury to differ from\.$/m,
    );
  });

  it('exits 1 with one line when the treasury does not answer', async () => {
    await paid();
    treasury.setMode({ kind: 'hang' });
    const result = await runCli(['--reconcile', '--since', since], { ...httpEnv(), TREASURY_TIMEOUT_MS: '500' });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(
      /^manage-referral-payouts: treasury did not answer within 500 ms \(GET \/transfers, 3 attempts\)\n$/,
    );
  });

  it('exits 2 on a bad --since, before touching the database or the treasury', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['--reconcile', '--since', 'yesterday'],
        /--since must be a date \(2026-11-20\) or an ISO-8601 time with offset .*got "yesterday"/,
      ],
      [['--reconcile', '--since', '2026-02-30'], /got "2026-02-30"/],
      [['--reconcile', '--since', '2026-11-20T08:00:00'], /got "2026-11-20T08:00:00"/],
      [['--reconcile', '--since', new Date(Date.now() + 86_400_000).toISOString()], /--since .* is in the future/],
      [['--reconcile', '--since'], /Not enough arguments following: since/],
      [['--summary', '--since', '2026-11-20'], /--since only applies to --reconcile/],
      [['--summary', '--fix'], /--fix only applies to --reconcile/],
      [['--reconcile', '--status', randomUUID()], /give only one command/],
    ];
    const lists = treasury.listRequests().length;
    const results = await Promise.all(
      cases.map(([args]) => runCli(args, { ...httpEnv(), DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' })),
    );
    results.forEach((result, i) => {
      expect(result.code, cases[i]![0].join(' ')).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(/^manage-referral-payouts: .+\n$/);
      expect(result.stderr).toMatch(cases[i]![1]);
    });
    expect(treasury.listRequests().length).toBe(lists);
  });
});
