import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { getReferralPayoutStatus, markReferralPayoutFailed, readTreasuryGate } from '@referrals/core';
import { confirmedPurchase, type ReferralChain, seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import {
  ADMIN_TOKEN,
  HAS_CHROMIUM,
  launchChromium,
  NAMED_OPERATORS,
  newPage as newBrowserPage,
  SKIPPED,
  signIn,
  text,
} from './console-browser.ts';
import { expectHealthyLedger, testApp } from './support.ts';

// Set it to a folder (e.g. docs) to refresh the README's screenshots from this run.
const SCREENSHOTS = process.env.CONSOLE_SCREENSHOT_DIR;
const HOSTILE = `<img src=x onerror="window.__pwned='img'"><script>window.__pwned='script'</script>`;

const t = useTestDatabase();
let app: ReturnType<typeof testApp>;
let base: string;
let browser: Browser;

beforeAll(async () => {
  if (!HAS_CHROMIUM) return;
  app = testApp(t.db, t.url, { env: NAMED_OPERATORS });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await app?.close();
});
afterEach(() => (HAS_CHROMIUM ? expectHealthyLedger(t.db) : undefined));

const newPage = () => newBrowserPage(browser, base);

async function failedPurchase(chain: ReferralChain, error: string): Promise<string> {
  const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
  await markReferralPayoutFailed(t.db, purchase.id, 'worker', error);
  return purchase.id;
}

describe.skipIf(!HAS_CHROMIUM)(`operator console in Chromium${SKIPPED}`, () => {
  it('signs in with an admin token into an HttpOnly, SameSite=Strict, expiring cookie, and signs out', async () => {
    const { context, page } = await newPage();
    try {
      const first = await page.goto('/console');
      expect(new URL(page.url()).pathname).toBe('/console/sign-in');
      expect(first?.status()).toBe(200);

      await page.getByLabel('Admin token').fill('not-the-token-0123456789');
      await page.getByRole('button', { name: 'Sign in' }).click();
      const alert = page.getByRole('alert');
      await alert.waitFor();
      expect(await alert.textContent()).toContain('not valid');
      expect(await page.getByRole('heading', { name: 'Payouts by status' }).count()).toBe(0);
      expect(await context.cookies()).toEqual([]);

      const before = Date.now();
      await signIn(page);
      const [cookie, ...others] = await context.cookies();
      expect(others).toEqual([]);
      expect(cookie).toMatchObject({
        name: 'referrals_console',
        httpOnly: true,
        sameSite: 'Strict',
        secure: false,
        path: '/console',
      });
      expect(cookie!.expires * 1000).toBeGreaterThan(before + 8 * 3_600_000 - 60_000);
      expect(cookie!.expires * 1000).toBeLessThan(Date.now() + 8 * 3_600_000 + 60_000);
      expect(await page.evaluate('document.cookie')).toBe('');
      expect(await text(page, '.who strong')).toBe('alice');

      // A tampered cookie is no session.
      await context.addCookies([{ ...cookie!, value: cookie!.value.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')) }]);
      await page.goto('/console/payouts');
      expect(new URL(page.url()).pathname).toBe('/console/sign-in');
      await context.addCookies([cookie!]);
      await page.goto('/console');
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('status').filter({ hasText: 'Signed out.' }).waitFor();
      expect(await context.cookies()).toEqual([]);
      await page.goto('/console/payouts');
      expect(new URL(page.url()).pathname).toBe('/console/sign-in');
      // The cookie copied before signing out is refused too: the session ended on the server.
      await context.addCookies([cookie!]);
      await page.goto('/console/payouts');
      expect(new URL(page.url()).pathname).toBe('/console/sign-in');
      expect(await page.getByRole('heading', { name: 'Payouts', level: 1 }).count()).toBe(0);
    } finally {
      await context.close();
    }
  });

  it('sends a strict CSP and the other security headers on pages and assets', async () => {
    const { context, page } = await newPage();
    try {
      await signIn(page, ADMIN_TOKEN);
      for (const path of ['/console', '/console/sign-in', '/console/assets/console.js']) {
        const response = await page.request.get(path);
        const headers = response.headers();
        const csp = headers['content-security-policy'] ?? '';
        expect({ path, csp }).toEqual({ path, csp: expect.stringContaining("frame-ancestors 'none'") });
        expect(csp).toMatch(/(^|;)\s*script-src 'self'(;|$)/);
        expect(csp).toMatch(/(^|;)\s*default-src 'self'(;|$)/);
        expect(csp).not.toContain('unsafe-inline');
        expect(csp).not.toContain('unsafe-eval');
        expect(headers['x-content-type-options']).toBe('nosniff');
        expect(headers['referrer-policy']).toBe('same-origin');
        expect(headers['x-frame-options']).toBe('DENY');
        // Operator data is never cached; the stylesheet and script may be revalidated.
        if (!path.includes('/assets/')) expect(headers['cache-control']).toBe('no-store');
      }
      // The JSON API keeps its own headers: no console policy leaks onto it.
      const api = await page.request.get('/healthz');
      expect(api.headers()['content-security-policy']).toBeUndefined();
      expect(await text(page, '.who strong')).toBe('admin');
    } finally {
      await context.close();
    }
  });

  it('finds purchases by handle and status, and shows hostile error text as text without running it', async () => {
    const chain = await seedReferralChain(t.db);
    const failed = await failedPurchase(chain, `treasury answered 422: ${HOSTILE}`);
    const completedElsewhere = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    const { context, page, errors } = await newPage();
    try {
      await signIn(page);
      await page.goto('/console/payouts');
      await page.getByLabel('Search').fill(chain.buyer.handle);
      await page.getByLabel('Status').selectOption('failed');
      await page.getByRole('button', { name: 'Find' }).click();
      await page.waitForURL(/status=failed/);
      const rows = page.locator('table.results tbody tr');
      expect(await rows.count()).toBe(1);
      expect(await rows.first().getByRole('link').textContent()).toBe(failed);
      expect(await rows.first().textContent()).toContain(HOSTILE);
      expect(await page.locator('table.results').getByText(completedElsewhere.id).count()).toBe(0);

      await rows.first().getByRole('link').click();
      await page.getByRole('heading', { name: /^Purchase/, level: 1 }).waitFor();
      expect(await page.locator('[data-last-error]').textContent()).toBe(`treasury answered 422: ${HOSTILE}`);
      await page.goto('/console');
      expect(await page.locator('section', { hasText: 'Recent failures' }).textContent()).toContain(HOSTILE);

      expect(await page.evaluate('window.__pwned')).toBeUndefined();
      expect(await page.locator('main img').count()).toBe(0);
      expect(await page.locator('main script').count()).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('refreshes the overview by itself', async () => {
    const { context, page, errors } = await newPage();
    try {
      await signIn(page);
      const queued = Number(await text(page, '[data-count="queued"]'));
      const chain = await seedReferralChain(t.db);
      await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
      // No reload: the page's own script swaps in the new counts.
      await page
        .locator('[data-count="queued"]', { hasText: new RegExp(`^${queued + 1}$`) })
        .waitFor({ timeout: 20_000 });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('retries a failed purchase to completed from its page', async () => {
    const chain = await seedReferralChain(t.db);
    const id = await failedPurchase(chain, 'treasury answered 503: try later');
    const { context, page } = await newPage();
    try {
      await signIn(page);
      await page.goto(`/console/purchases/${id}`);
      expect(await page.locator('[data-payout-status]').getAttribute('data-payout-status')).toBe('failed');
      await page.getByRole('button', { name: 'Retry payout' }).click();
      await page.getByRole('status').filter({ hasText: 'Payout processed' }).waitFor();
      expect(await page.locator('[data-payout-status]').getAttribute('data-payout-status')).toBe('completed');
      expect(await page.locator('tr[data-level="direct"]').textContent()).toContain('paid');
      expect(await page.locator('tr[data-level="grand"]').textContent()).toContain('paid');
      expect(await page.locator('table.timeline tbody tr').last().textContent()).toMatch(
        /failed\s*completed\s*console \(alice\)/,
      );
      expect((await getReferralPayoutStatus(t.db, id)).events.at(-1)).toMatchObject({
        from: 'failed',
        to: 'completed',
        actor: 'console',
        operator: 'alice',
      });
      // Nothing is left to repair on a completed purchase.
      expect(await page.getByRole('button', { name: 'Retry payout' }).count()).toBe(0);
    } finally {
      await context.close();
    }
  });

  it('writes off a failed purchase after a confirmation step, naming the operator and the reason', async () => {
    const chain = await seedReferralChain(t.db);
    const id = await failedPurchase(chain, 'treasury answered 422: beneficiary account closed');
    const { context, page } = await newPage();
    try {
      await signIn(page);
      await page.goto(`/console/purchases/${id}`);
      await page.getByLabel('Reason').fill('account closed, confirmed with support');
      await page.getByRole('button', { name: 'Write off' }).click();
      await page.getByRole('heading', { name: /^Write off purchase/ }).waitFor();
      // Nothing is written before the confirmation.
      expect((await getReferralPayoutStatus(t.db, id)).status).toBe('failed');
      await page.getByRole('button', { name: 'Confirm write-off' }).click();
      await page.getByRole('status').filter({ hasText: 'written off' }).waitFor();
      expect(await page.locator('[data-payout-status]').getAttribute('data-payout-status')).toBe('not_applicable');

      const view = await getReferralPayoutStatus(t.db, id);
      expect(view).toMatchObject({ status: 'not_applicable', reason: 'written_off' });
      expect(view.events.at(-1)).toMatchObject({
        actor: 'console',
        operator: 'alice',
        note: 'account closed, confirmed with support',
      });
      expect(await page.locator('table.timeline tbody tr').last().textContent()).toContain('console (alice)');
      expect(await page.getByRole('button', { name: 'Write off' }).count()).toBe(0);
      if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, 'console-purchase.png'), fullPage: true });
    } finally {
      await context.close();
    }
  });

  it('pauses payouts with a reason and resumes them', async () => {
    const { context, page } = await newPage();
    try {
      await signIn(page);
      await page.getByLabel('Reason for pausing').fill('treasury maintenance until 14:00');
      await page.getByRole('button', { name: 'Pause payouts' }).click();
      await page.getByRole('button', { name: 'Resume payouts' }).waitFor();
      expect(await text(page, '.treasury .reason')).toBe('treasury maintenance until 14:00');
      expect(await readTreasuryGate(t.db)).toMatchObject({
        state: 'paused',
        by: 'alice',
        reason: 'treasury maintenance until 14:00',
      });
      if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, 'console-overview.png'), fullPage: true });

      await page.getByRole('button', { name: 'Resume payouts' }).click();
      await page.getByRole('button', { name: 'Pause payouts' }).waitFor();
      expect((await readTreasuryGate(t.db)).state).toBe('closed');
    } finally {
      await context.close();
    }
  });

  it('refuses a POST from another origin with 403, even with the session cookie', async () => {
    const target = new URL('/console/treasury/pause', base).href;
    // Same site (127.0.0.1), other origin (port): the SameSite=Strict cookie goes along, so only the
    // Origin check stands between this page and a state change.
    const attacker: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(
        `<form method="post" action="${target}"><input name="reason" value="pwned"></form><script>document.forms[0].submit()</script>`,
      );
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    const { context, page } = await newPage();
    try {
      await signIn(page);
      const refused = page.waitForResponse((response) => response.url() === target);
      await page.goto(`http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`);
      expect((await refused).status()).toBe(403);
      await page.getByRole('alert').waitFor();
      expect(await page.getByRole('alert').textContent()).toContain('did not come from a console page');
      expect((await readTreasuryGate(t.db)).state).toBe('closed');
    } finally {
      await context.close();
      await new Promise((resolve) => attacker.close(resolve));
    }
  });

  // Last in this file: it retries every failed purchase the earlier tests left.
  it('retries all failed purchases and shows the outcome', async () => {
    const chain = await seedReferralChain(t.db);
    const ids = [
      await failedPurchase(chain, 'treasury answered 503'),
      await failedPurchase(chain, 'treasury answered 503'),
    ];
    const { context, page, errors } = await newPage();
    try {
      await signIn(page);
      await page.goto('/console/payouts?status=failed');
      await page.getByRole('button', { name: 'Retry all failed' }).click();
      await page.getByRole('heading', { name: 'Outcome' }).waitFor({ timeout: 30_000 });
      const total = Number(await text(page, '[data-report="total"]'));
      expect(total).toBeGreaterThanOrEqual(ids.length);
      expect(Number(await text(page, '[data-report="completed"]'))).toBe(total);
      expect(Number(await text(page, '[data-report="stillFailed"]'))).toBe(0);
      for (const id of ids)
        expect((await getReferralPayoutStatus(t.db, id)).events.at(-1)).toMatchObject({
          from: 'failed',
          to: 'completed',
          actor: 'console',
          operator: 'alice',
        });
      expect(await page.locator('table.results tbody tr').count()).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
