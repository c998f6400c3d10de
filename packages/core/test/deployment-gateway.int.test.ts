import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import {
  createDatabase,
  DomainError,
  ensureDeploymentGateway,
  GatewayMismatchError,
  getReferralPayoutStatus,
  httpGateway,
  ledgerGateway,
  MIGRATIONS_DIR,
  migrate,
  movementRows,
  processReferralPayouts,
  processReferralPayoutsBatch,
  readDeploymentGateway,
  referralMovement,
  switchDeploymentGateway,
} from '@referrals/core';
import { confirmedPurchase, databaseUrl, readInvariants, seedReferralChain } from '@referrals/testing';
import { useTestDatabase, useFakeTreasury } from '@referrals/testing/vitest';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });
const treasury = useFakeTreasury();
beforeEach(async () => {
  treasury.setMode({ kind: 'succeed' });
  // Each test is a deployment of its own: nothing recorded, nothing left to settle by earlier tests.
  await sql`update payout_gateway_setting set gateway = null, set_at = null, set_by = null`.execute(t.db);
  await sql`update purchases set referral_payout_status = 'not_applicable', referral_payout_reason = 'written_off'
             where referral_payout_status in ('queued', 'failed')`.execute(t.db);
  await sql`update referral_payouts set status = 'written_off' where status in ('pending', 'failed')`.execute(t.db);
});

const http = () => ({
  db: t.db,
  gateway: httpGateway({ treasuryUrl: treasury.url, timeoutMs: 2_000 }),
  minPayout: 1,
  logger,
});
const ledger = () => ({ db: t.db, gateway: ledgerGateway, minPayout: 1, logger });

async function queuedPurchase(): Promise<string> {
  const chain = await seedReferralChain(t.db, { price: 10_000 });
  return (await confirmedPurchase(t.db, chain.buyer.id, chain.content.id)).id;
}

/** A purchase whose levels the http gateway planned and failed to pay: both pending or failed. */
async function leftByHttp(): Promise<string> {
  const id = await queuedPurchase();
  treasury.setMode({ kind: 'fail', times: Infinity });
  const result = await processReferralPayouts(http(), id, { actor: 'worker' });
  expect(result).toMatchObject({ status: 'retryable', attempts: 1 });
  treasury.setMode({ kind: 'succeed' });
  return id;
}

describe('the gateway recorded per level', () => {
  it('records the gateway that planned and paid each level', async () => {
    const viaLedger = await queuedPurchase();
    const viaHttp = await queuedPurchase();
    await processReferralPayouts(ledger(), viaLedger, { actor: 'worker' });
    await processReferralPayouts(http(), viaHttp, { actor: 'worker' });
    const rows = await t.db
      .selectFrom('referral_payouts')
      .select(['purchase_id', 'level', 'gateway', 'status'])
      .where('purchase_id', 'in', [viaLedger, viaHttp])
      .orderBy('level')
      .execute();
    expect(rows.filter((r) => r.purchase_id === viaLedger).map((r) => [r.level, r.gateway, r.status])).toEqual([
      ['direct', 'ledger', 'paid'],
      ['grand', 'ledger', 'paid'],
    ]);
    expect(rows.filter((r) => r.purchase_id === viaHttp).map((r) => [r.level, r.gateway, r.status])).toEqual([
      ['direct', 'http', 'paid'],
      ['grand', 'http', 'paid'],
    ]);
  });

  it('refuses to settle levels planned for http through the ledger: nothing moves, nothing is recorded', async () => {
    const id = await leftByHttp();
    const before = await getReferralPayoutStatus(t.db, id);
    const entriesOf = async (purchaseId: string) =>
      Number(
        (
          await t.db
            .selectFrom('ledger_entries')
            .select(sql<number>`count(*)`.as('n'))
            .where('purchase_id', '=', purchaseId)
            .executeTakeFirstOrThrow()
        ).n,
      );
    const ledgerBefore = await entriesOf(id);

    const refusal = processReferralPayouts(ledger(), id, { actor: 'admin-api' });
    await expect(refusal).rejects.toBeInstanceOf(DomainError);
    await expect(refusal).rejects.toMatchObject({
      code: 'gateway_mismatch',
      message: expect.stringMatching(
        /direct and grand levels were planned for the "http" payout gateway; this process pays through "ledger"/,
      ),
    });
    // The batch path (the worker's, several purchases in one transaction) answers the same per purchase.
    const other = await queuedPurchase();
    const [refused, paid] = await processReferralPayoutsBatch(ledger(), [{ purchaseId: id }, { purchaseId: other }], {
      actor: 'worker',
    });
    expect(refused).toMatchObject({ status: 'rejected', error: { code: 'gateway_mismatch' } });
    expect(paid).toMatchObject({ status: 'completed' });

    const after = await getReferralPayoutStatus(t.db, id);
    expect(after).toEqual(before);
    expect(after.payouts.map((p) => p.status)).toEqual(['failed', 'failed']);
    expect(await entriesOf(id)).toBe(ledgerBefore);

    // Through its own gateway the purchase is paid, once per level.
    expect(await processReferralPayouts(http(), id, { actor: 'admin-api' })).toMatchObject({ status: 'completed' });
    expect(treasury.accepted().filter((a) => a.idempotencyKey.startsWith(`${id}:`))).toHaveLength(2);
    expect((await readInvariants(t.db)).ledgerTotals).toEqual({ EUR: 0 });
  });
});

describe("the deployment's gateway", () => {
  it('is recorded by the first process and refused to any other', async () => {
    expect(await readDeploymentGateway(t.db)).toBeNull();
    expect(await ensureDeploymentGateway(t.db, 'http', 'worker')).toMatchObject({ gateway: 'http', setBy: 'worker' });
    expect(await ensureDeploymentGateway(t.db, 'http', 'api')).toMatchObject({ gateway: 'http', setBy: 'worker' });
    const mismatch = ensureDeploymentGateway(t.db, 'ledger', 'api');
    await expect(mismatch).rejects.toBeInstanceOf(GatewayMismatchError);
    await expect(mismatch).rejects.toThrow(
      /^PAYOUT_GATEWAY is "ledger" but this database pays referrals through "http" \(recorded .* by worker\); start with PAYOUT_GATEWAY=http, or switch the deployment first: npm run manage-referral-payouts -- --set-gateway ledger$/,
    );
  });

  it('two processes starting at once with different gateways: exactly one wins', async () => {
    const outcomes = await Promise.allSettled([
      ensureDeploymentGateway(t.db, 'ledger', 'api'),
      ensureDeploymentGateway(t.db, 'http', 'worker'),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(1);
  });

  it('switches only when nothing is left to settle through the old gateway', async () => {
    await ensureDeploymentGateway(t.db, 'ledger', 'worker');
    const queued = await queuedPurchase();
    await expect(switchDeploymentGateway(t.db, 'http', 'cli:ops')).rejects.toMatchObject({
      code: 'conflict',
      message:
        'cannot switch referral payouts from "ledger" to "http" yet: 1 purchase(s) still queued (let the worker settle them)',
    });
    expect((await readDeploymentGateway(t.db))?.gateway).toBe('ledger');

    await processReferralPayouts(ledger(), queued, { actor: 'worker' });
    expect(await switchDeploymentGateway(t.db, 'http', 'cli:ops')).toEqual({
      from: 'ledger',
      to: 'http',
      changed: true,
    });
    expect(await readDeploymentGateway(t.db)).toMatchObject({ gateway: 'http', setBy: 'cli:ops' });
    await expect(ensureDeploymentGateway(t.db, 'ledger', 'api')).rejects.toBeInstanceOf(GatewayMismatchError);

    // Back to the ledger: a failed purchase whose http levels are unpaid holds the switch.
    const failed = await leftByHttp();
    await sql`update purchases set referral_payout_status = 'failed', referral_payout_failed_at = now() where id = ${failed}`.execute(
      t.db,
    );
    await expect(switchDeploymentGateway(t.db, 'ledger', 'cli:ops')).rejects.toMatchObject({
      code: 'conflict',
      message:
        'cannot switch referral payouts from "http" to "ledger" yet: 2 level(s) planned for "http" still unpaid (repair them with the "http" gateway or write their purchases off)',
    });
    expect(await switchDeploymentGateway(t.db, 'http', 'cli:ops')).toEqual({
      from: 'http',
      to: 'http',
      changed: false,
    });
  });
});

describe('migration 0010 on a database with payouts', () => {
  it('backfills each level from what its gateway left, and the deployment from the latest level', async () => {
    const adminUrl = inject('postgresAdminUrl');
    const name = `rp_migration_${Date.now().toString(36)}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`create database ${name}`);
    const db = createDatabase(databaseUrl(adminUrl, name), { max: 2 });
    const before = await mkdtemp(join(tmpdir(), 'rp-migrations-'));
    try {
      for (const file of (await readdir(MIGRATIONS_DIR)).filter((f) => f < '0010')) {
        await copyFile(join(MIGRATIONS_DIR, file), join(before, file));
      }
      await migrate(db, before);

      // Written as the code before this migration wrote them.
      const chain = await seedReferralChain(db, { price: 10_000 });
      const viaLedger = (await confirmedPurchase(db, chain.buyer.id, chain.content.id)).id;
      const viaHttp = (await confirmedPurchase(db, chain.buyer.id, chain.content.id)).id;
      const movement = movementRows(
        referralMovement({ amount: 1000, currency: 'EUR', purchaseId: viaLedger, beneficiaryId: chain.direct.id }),
      );
      await db.insertInto('ledger_entries').values(movement).execute();
      await sql`
        insert into referral_payouts (purchase_id, level, beneficiary_id, rate_bps, amount, currency, status, reference, paid_at, created_at)
        values (${viaLedger}, 'direct', ${chain.direct.id}, 1000, 1000, 'EUR', 'paid', ${movement[0]!.transaction_id}, now(), now() - interval '2 minutes'),
               (${viaHttp}, 'direct', ${chain.direct.id}, 1000, 1000, 'EUR', 'paid', 'tr_123', now(), now() - interval '1 minute'),
               (${viaHttp}, 'grand', ${chain.grand.id}, 500, 500, 'EUR', 'failed', null, null, now() - interval '1 minute')`.execute(
        db,
      );

      expect((await migrate(db)).applied).toEqual(['0010_payout_gateway']);
      const levels = await db
        .selectFrom('referral_payouts')
        .select(['purchase_id', 'level', 'gateway'])
        .orderBy('created_at')
        .orderBy('level')
        .execute();
      expect(levels.map((l) => [l.purchase_id, l.level, l.gateway])).toEqual([
        [viaLedger, 'direct', 'ledger'],
        [viaHttp, 'direct', 'http'],
        [viaHttp, 'grand', 'http'],
      ]);
      expect(await readDeploymentGateway(db)).toMatchObject({
        gateway: 'http',
        setBy: 'migration 0010 (from existing payouts)',
      });
    } finally {
      await db.destroy();
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
      await rm(before, { recursive: true, force: true });
    }
  });
});
