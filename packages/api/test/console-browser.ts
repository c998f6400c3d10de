import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { toolAvailable } from '@referrals/testing';
import { ADMIN_TOKEN } from './support.ts';

/** What the console's browser tests share: Chromium, a page per test, and signing in. */

const CHROMIUM = '/usr/bin/chromium';
// Skipped with a message where Chromium is missing; under REQUIRE_ALL_TOOLS=1 (CI) that fails instead.
export const HAS_CHROMIUM = toolAvailable(`Chromium (${CHROMIUM})`, existsSync(CHROMIUM), 'apt-get install chromium');
export const SKIPPED = HAS_CHROMIUM ? '' : ` — SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium)`;

/** A named operator's token: the tests' app is configured with ADMIN_TOKENS="alice:<this>". */
export const ALICE_TOKEN = 'alice-console-token-0123456789';
export const NAMED_OPERATORS = { ADMIN_TOKENS: `alice:${ALICE_TOKEN}` };

export function launchChromium(): Promise<Browser> {
  // Root cannot use Chromium's sandbox; tests run as root on CI.
  return chromium.launch({ executablePath: CHROMIUM, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
}

/** A browser profile of its own, with every script error and dialog recorded. */
export async function newPage(
  browser: Browser,
  baseURL: string,
): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({ baseURL, viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('dialog', (dialog) => {
    errors.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  return { context, page, errors };
}

/** Signs in through the form and waits for the overview. */
export async function signIn(page: Page, token = ALICE_TOKEN): Promise<void> {
  await page.goto('/console/sign-in');
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
}

export const text = async (page: Page, selector: string) =>
  (await page.locator(selector).first().textContent())?.trim();

export { ADMIN_TOKEN };
