import { describe, expect, it } from 'vitest';
import { getReferralPayoutStatus, readTreasuryGate } from '@referrals/core';
import { confirmedPurchase, seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { runCli } from './run-cli.ts';

const t = useTestDatabase();
const env = () => ({ DATABASE_URL: t.url });

describe('--pause / --resume', () => {
  it('refuses a pause without a reason, and --reason elsewhere, with exit 2 and nothing written', async () => {
    for (const [args, message] of [
      [['--pause'], /--pause needs --reason/],
      [['--pause', '--reason', '   '], /--pause needs --reason/],
      [['--resume', '--reason', 'x'], /--reason only applies to --write-off and --pause/],
      [['--pause', '--resume', '--reason', 'x'], /give only one command/],
    ] as const) {
      const result = await runCli([...args], env());
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toMatch(message);
      expect(result.stdout).toBe('');
    }
    expect(await t.db.selectFrom('treasury_gate_events').selectAll().execute()).toEqual([]);
  });

  it('pauses with who and why, shows it in --summary, refuses a second pause, and resumes', async () => {
    const paused = await runCli(['--pause', '--reason', 'treasury incident'], env());
    expect(paused.code).toBe(0);
    expect(paused.stdout).toMatch(
      /^Referral payouts paused by cli:\S+ at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: treasury incident/,
    );
    expect(await readTreasuryGate(t.db)).toMatchObject({
      state: 'paused',
      reason: 'treasury incident',
      by: expect.stringMatching(/^cli:/),
    });

    const text = await runCli(['--summary'], env());
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Treasury\s+PAUSED by cli:\S+ since .* UTC: treasury incident$/m);
    const json = await runCli(['--summary', '--json'], env());
    expect(JSON.parse(json.stdout).treasury).toMatchObject({
      state: 'paused',
      reason: 'treasury incident',
      lastError: null,
    });

    const again = await runCli(['--pause', '--reason', 'other'], env());
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already paused by cli:\S+ since .*: treasury incident/);

    const resumed = await runCli(['--resume', '--json'], env());
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ state: 'closed', by: null, reason: null });
    expect((await runCli(['--summary'], env())).stdout).toMatch(/^Treasury\s+closed \(transfers go through\)/m);

    const notPaused = await runCli(['--resume'], env());
    expect(notPaused.code).toBe(1);
    expect(notPaused.stderr).toMatch(/not paused/);
  });

  it('refuses --process and --process-all-failed while paused (exit 1, nothing transferred or charged) and pays once resumed', async () => {
    const chain = await seedReferralChain(t.db, { price: 10_000 });
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    expect((await runCli(['--pause', '--reason', 'fraud review'], env())).code).toBe(0);

    const refused = await runCli(['--process', purchase.id], env());
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /referral payouts are paused by cli:\S+ since .* \(fraud review\); nothing was transferred/,
    );
    expect(await getReferralPayoutStatus(t.db, purchase.id)).toMatchObject({
      status: 'queued',
      attempts: 0,
      payouts: [],
    });
    const bulk = await runCli(['--process-all-failed'], env());
    expect(bulk.code).toBe(1);
    expect(bulk.stderr).toMatch(/referral payouts are paused by cli:/);

    expect((await runCli(['--resume'], env())).code).toBe(0);
    const paid = await runCli(['--process', purchase.id], env());
    expect(paid.code).toBe(0);
    expect(await getReferralPayoutStatus(t.db, purchase.id)).toMatchObject({ status: 'completed', attempts: 1 });
  });
});
