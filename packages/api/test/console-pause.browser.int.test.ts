import { sql } from 'kysely';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { getReferralPayoutStatus, loadConfig, readTreasuryGate } from '@referrals/core';
import { seedReferralChain, waitFor } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { type RunningWorker, startWorker } from '@referrals/worker';
import { HAS_CHROMIUM, launchChromium, NAMED_OPERATORS, newPage, SKIPPED, signIn } from './console-browser.ts';
import { expectHealthyLedger, SERVICE_TOKEN, silent, testApp } from './support.ts';

// A file of its own: the worker here pays every queued purchase it finds, which the other console
// tests leave queued on purpose.
const t = useTestDatabase();
let app: ReturnType<typeof testApp>;
let base: string;
let browser: Browser;
let worker: RunningWorker;

beforeAll(async () => {
  if (!HAS_CHROMIUM) return;
  app = testApp(t.db, t.url, { env: NAMED_OPERATORS });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  worker = await startWorker({
    config: loadConfig({ DATABASE_URL: t.url, OUTBOX_POLL_INTERVAL_MS: '200', WORKER_CONCURRENCY: '2' }),
    logger: silent,
  });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await app?.close();
});
afterEach(() => (HAS_CHROMIUM ? expectHealthyLedger(t.db) : undefined));

/** A marketplace call as the marketplace makes it: over HTTP with the service token. */
async function marketplace(path: string, body: object): Promise<{ id: string }> {
  const response = await fetch(new URL(path, base), {
    method: 'POST',
    headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status, await response.clone().text()).toBeLessThan(300);
  return (await response.json()) as { id: string };
}

/** The gate as the worker process sees it, read through its own metrics (which refresh its copy). */
async function gateSeenByWorker(): Promise<string | undefined> {
  const metric = await worker.metrics.registry.getSingleMetricAsString('referral_treasury_gate_state');
  return /referral_treasury_gate_state\{state="(\w+)"\} 1/.exec(metric)?.[1];
}

const payoutJobs = async (purchaseId: string) =>
  (
    await sql<{ state: string }>`select state from pgboss.job
      where name = 'referral-payouts' and data->>'purchaseId' = ${purchaseId}`.execute(t.db)
  ).rows.map((r) => r.state);

const referralCredits = (purchaseId: string) =>
  t.db
    .selectFrom('ledger_entries')
    .select(['user_id', 'amount'])
    .where('account', '=', 'referral_earnings')
    .where('purchase_id', '=', purchaseId)
    .orderBy('amount', 'desc')
    .execute();

describe.skipIf(!HAS_CHROMIUM)(`console pause and resume with a running worker, in Chromium${SKIPPED}`, () => {
  it('pause holds a new purchase and resume pays it', async () => {
    const chain = await seedReferralChain(t.db, { price: 10_000 });
    const { context, page, errors } = await newPage(browser, base);
    try {
      await signIn(page);
      await page.getByLabel('Reason for pausing').fill('treasury migration, back at 15:00');
      await page.getByRole('button', { name: 'Pause payouts' }).click();
      await page.getByRole('button', { name: 'Resume payouts' }).waitFor();
      expect(await readTreasuryGate(t.db)).toMatchObject({ state: 'paused', by: 'alice' });
      // The worker has read the paused gate: nothing it takes from now on is paid.
      await waitFor(async () => (await gateSeenByWorker()) === 'paused', { what: 'the worker to see the pause' });

      const pending = await marketplace('/api/marketplace/purchases', {
        buyerId: chain.buyer.id,
        contentId: chain.content.id,
      });
      await marketplace(`/api/marketplace/purchase/${pending.id}/confirm`, { paymentReference: 'pay_console_pause' });
      // The relay has handed the purchase to the payout handler, which holds it at the gate.
      await waitFor(async () => (await payoutJobs(pending.id)).includes('active'), {
        what: 'the worker to hold the payout job',
        timeoutMs: 30_000,
      });

      const held = await getReferralPayoutStatus(t.db, pending.id);
      expect(held).toMatchObject({ status: 'queued', attempts: 0, lastError: null, payouts: [] });
      expect(await referralCredits(pending.id)).toEqual([]);
      await page.goto(`/console/purchases/${pending.id}`);
      expect(await page.locator('[data-payout-status]').getAttribute('data-payout-status')).toBe('queued');

      await page.goto('/console');
      await page.getByRole('button', { name: 'Resume payouts' }).click();
      await page.getByRole('button', { name: 'Pause payouts' }).waitFor();
      expect((await readTreasuryGate(t.db)).state).toBe('closed');

      await waitFor(async () => (await getReferralPayoutStatus(t.db, pending.id)).status === 'completed', {
        what: 'the held purchase to be paid after resume',
        timeoutMs: 30_000,
      });
      const paid = await getReferralPayoutStatus(t.db, pending.id);
      expect(paid.attempts).toBe(1);
      expect(paid.payouts.map((p) => [p.level, p.beneficiaryId, p.amount, p.status])).toEqual([
        ['direct', chain.direct.id, 1000, 'paid'],
        ['grand', chain.grand.id, 500, 'paid'],
      ]);
      // Exactly one credit per level, whatever the hold and the resume did.
      expect(await referralCredits(pending.id)).toEqual([
        { user_id: chain.direct.id, amount: 1000 },
        { user_id: chain.grand.id, amount: 500 },
      ]);
      expect(paid.events.map((e) => [e.from, e.to, e.actor])).toEqual([
        [null, 'queued', 'api'],
        ['queued', 'completed', 'worker'],
      ]);
      // Paid after the resume, not in the moment before the checks above looked: the payout's
      // transaction began after the resume had committed.
      const resumed = await t.db
        .selectFrom('treasury_gate_events')
        .select(['at', 'actor', 'operator'])
        .where('from_state', '=', 'paused')
        .where('to_state', '=', 'closed')
        .orderBy('id', 'desc')
        .executeTakeFirstOrThrow();
      expect(resumed).toMatchObject({ actor: 'console', operator: 'alice' });
      expect(new Date(paid.completedAt!).getTime()).toBeGreaterThan(resumed.at.getTime());

      await page.goto(`/console/purchases/${pending.id}`);
      expect(await page.locator('[data-payout-status]').getAttribute('data-payout-status')).toBe('completed');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
