import { userInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { getReferralPayoutStatus, httpGateway, processReferralPayouts, referralEarnings } from '@referrals/core';
import { confirmedPurchase, seedReferralChain } from '@referrals/testing';
import { useTestDatabase, useFakeTreasury } from '@referrals/testing/vitest';
import { runCli } from './run-cli.ts';

const t = useTestDatabase();
const treasury = useFakeTreasury({ kind: 'fail', times: Infinity, only: (key) => key.endsWith(':direct') });

async function failedPurchase() {
  const chain = await seedReferralChain(t.db);
  const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
  const ctx = {
    db: t.db,
    gateway: httpGateway({ treasuryUrl: treasury.url, timeoutMs: 2000 }),
    minPayout: 1,
    logger: pino({ level: 'silent' }),
  };
  expect(await processReferralPayouts(ctx, purchase.id, { actor: 'worker', finalAttempt: true })).toMatchObject({
    status: 'failed',
  });
  return { chain, id: purchase.id };
}

describe('--write-off', () => {
  it('writes off the unpaid level with the reason and the OS user, and keeps the paid one', async () => {
    const { chain, id } = await failedPurchase();
    const result = await runCli(['--write-off', id, '--reason', 'beneficiary account closed'], { DATABASE_URL: t.url });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Written off (direct); levels already paid stay paid.');
    expect(result.stdout).toMatch(/Referral payout +not applicable \(written off\)/);
    expect(result.stdout).toMatch(
      new RegExp(`failed +not applicable +cli \\(${userInfo().username}\\) +1 +beneficiary account closed`),
    );

    const view = await getReferralPayoutStatus(t.db, id);
    expect(view.payouts.map((p) => [p.level, p.status])).toEqual([
      ['direct', 'written_off'],
      ['grand', 'paid'],
    ]);
    expect(view.events.at(-1)).toMatchObject({
      actor: 'cli',
      operator: userInfo().username,
      note: 'beneficiary account closed',
    });
    expect(await referralEarnings(t.db, chain.grand.id)).toBe(500);

    const json = await runCli(['--status', id, '--json'], { DATABASE_URL: t.url });
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'not_applicable', reason: 'written_off' });
  });

  it('exits 1 and changes nothing when the purchase is not failed; 3 when unknown; 2 without a reason', async () => {
    const { id } = await failedPurchase();
    expect((await runCli(['--write-off', id, '--reason', 'first'], { DATABASE_URL: t.url })).code).toBe(0);
    const again = await runCli(['--write-off', id, '--reason', 'second', '--json'], { DATABASE_URL: t.url });
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/only failed referral payouts can be written off; purchase .* is not_applicable/);
    expect((await getReferralPayoutStatus(t.db, id)).events.filter((e) => e.note !== null).map((e) => e.note)).toEqual([
      'first',
    ]);

    const usageCases = [
      ['--write-off', id],
      ['--write-off', id, '--reason', '  '],
      ['--status', id, '--reason', 'x'],
      ['--write-off', 'nope', '--reason', 'x'],
    ];
    const [unknown, ...usage] = await Promise.all([
      runCli(['--write-off', '00000000-0000-4000-8000-000000000000', '--reason', 'x'], { DATABASE_URL: t.url }),
      ...usageCases.map((args) => runCli(args, { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' })),
    ]);
    expect(unknown!.code).toBe(3);
    usage.forEach((result, i) => {
      expect({ args: usageCases[i], code: result.code }).toEqual({ args: usageCases[i], code: 2 });
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    });
  });
});
