import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { httpGateway, processReferralPayouts, readDeploymentGateway } from '@referrals/core';
import { confirmedPurchase, seedReferralChain } from '@referrals/testing';
import { useTestDatabase, useFakeTreasury } from '@referrals/testing/vitest';
import { runCli } from './run-cli.ts';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });
const treasury = useFakeTreasury();

const ledgerEnv = () => ({ DATABASE_URL: t.url, PAYOUT_GATEWAY: 'ledger' });
const httpEnv = () => ({ DATABASE_URL: t.url, PAYOUT_GATEWAY: 'http', TREASURY_URL: treasury.url });

describe('one payout gateway per database', () => {
  it('pays only through the recorded gateway, and switches only when nothing is left to settle', async () => {
    const chain = await seedReferralChain(t.db);
    const first = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);

    // The first process that pays records its gateway.
    expect((await runCli(['--process', first.id], ledgerEnv())).code).toBe(0);
    expect(await readDeploymentGateway(t.db)).toMatchObject({ gateway: 'ledger', setBy: 'cli' });

    // Another gateway is refused before anything is touched: one line, exit 2.
    const second = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    const refused = await runCli(['--process', second.id], httpEnv());
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      `manage-referral-payouts: PAYOUT_GATEWAY is "http" but this database pays referrals through "ledger" (recorded ${(await readDeploymentGateway(t.db))!.setAt.toISOString()} by cli); start with PAYOUT_GATEWAY=ledger, or switch the deployment first: npm run manage-referral-payouts -- --set-gateway http\n`,
    );
    expect(refused.stdout).toBe('');
    expect((await runCli(['--process-all-failed'], httpEnv())).code).toBe(2);
    expect((await runCli(['--reconcile'], httpEnv())).code).toBe(2);
    // Reading needs no gateway.
    expect((await runCli(['--status', second.id], httpEnv())).code).toBe(0);

    // The switch waits for the queued purchase.
    const blocked = await runCli(['--set-gateway', 'http'], ledgerEnv());
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toMatch(
      /^manage-referral-payouts: cannot switch referral payouts from "ledger" to "http" yet: 1 purchase\(s\) still queued/,
    );
    expect((await readDeploymentGateway(t.db))?.gateway).toBe('ledger');
    expect((await runCli(['--process', second.id], ledgerEnv())).code).toBe(0);

    const switched = await runCli(['--set-gateway', 'http'], ledgerEnv());
    expect(switched.code).toBe(0);
    expect(switched.stdout).toMatch(/^Referral payouts now go through the "http" gateway \(was "ledger"\)\.$/m);
    expect((await readDeploymentGateway(t.db))?.setBy).toMatch(/^cli:/);
    expect((await runCli(['--set-gateway', 'http', '--json'], httpEnv())).stdout).toContain('"changed": false');

    const third = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    expect((await runCli(['--process', third.id], ledgerEnv())).code).toBe(2);
    const paid = await runCli(['--process', third.id], httpEnv());
    expect(paid.code).toBe(0);
    expect(
      treasury
        .accepted()
        .map((a) => a.idempotencyKey)
        .sort(),
    ).toEqual([`${third.id}:direct`, `${third.id}:grand`]);

    const levels = await t.db
      .selectFrom('referral_payouts')
      .select(['purchase_id', 'gateway'])
      .where('purchase_id', 'in', [first.id, second.id, third.id])
      .execute();
    expect(levels.filter((l) => l.gateway === 'ledger')).toHaveLength(4);
    expect(levels.filter((l) => l.gateway === 'http').map((l) => l.purchase_id)).toEqual([third.id, third.id]);
  });

  it('a level planned for http is not repaired through the ledger', async () => {
    const chain = await seedReferralChain(t.db);
    const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    const ctx = {
      db: t.db,
      gateway: httpGateway({ treasuryUrl: treasury.url, timeoutMs: 2000 }),
      minPayout: 1,
      logger,
    };
    treasury.setMode({ kind: 'refuse', when: (transfer) => transfer.idempotencyKey.startsWith(purchase.id) });
    await processReferralPayouts(ctx, purchase.id, { actor: 'worker', finalAttempt: true });
    treasury.setMode({ kind: 'succeed' });
    // As if the deployment had been switched behind the failed purchase's back.
    await t.db.updateTable('payout_gateway_setting').set({ gateway: 'ledger' }).execute();

    const repair = await runCli(['--process', purchase.id], ledgerEnv());
    expect(repair.code).toBe(1);
    expect(repair.stderr).toMatch(/direct and grand levels were planned for the "http" payout gateway/);
    const levels = await t.db
      .selectFrom('referral_payouts')
      .select(['status', 'reference'])
      .where('purchase_id', '=', purchase.id)
      .execute();
    expect(levels).toEqual([
      { status: 'failed', reference: null },
      { status: 'failed', reference: null },
    ]);
    // Switching to the gateway those levels belong to is allowed.
    expect((await runCli(['--set-gateway', 'http'], ledgerEnv())).code).toBe(0);
  });

  it('rejects an unknown gateway as a usage error', async () => {
    const result = await runCli(['--set-gateway', 'paypal'], ledgerEnv());
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--set-gateway must be ledger or http, got "paypal"/);
  });
});
