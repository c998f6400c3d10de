/**
 * `pnpm demo`: fills a running system (`pnpm start`) through its public API with a referral chain,
 * a creator, content and purchases, and shows their referral payouts go from queued to completed.
 * One purchase pays a commission above 5.00: the demo treasury (`pnpm demo treasury`) refuses
 * that, so when the system pays through it, that payout fails and the CLI repairs it. With the
 * default ledger gateway nothing refuses a payout, and the demo says so and shows how to see one.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import closeWithGrace from 'close-with-grace';
import { formatMoney as money, loadConfig } from '@referrals/core';
import { startFakeTreasury, type TreasuryMode } from '@referrals/testing/fake-treasury';
import { type ApiClient, type ApiPayoutStatus, apiClient } from './api-client.ts';
import { embeddedDatabaseUrl } from './embedded-postgres.ts';
import { apiBaseUrl, dataDirectory, readToken } from './local-setup.ts';

const TREASURY_PORT = Number(process.env.DEMO_TREASURY_PORT ?? 4010);
const TREASURY_URL = `http://127.0.0.1:${TREASURY_PORT}`;
/** The demo treasury's per-transfer limit, in minor units. */
const TREASURY_LIMIT = 500;

const say = (line = '') => process.stdout.write(`${line}\n`);

if (process.argv[2] === 'treasury') await runTreasury().catch(stop);
else if (process.argv[2] === undefined) await runDemo().catch(stop);
else stop(new Error(`usage: pnpm demo [treasury] (got "${process.argv[2]}")`));

function stop(error: unknown): never {
  process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}

async function runDemo() {
  // The same environment as `pnpm start` (HOST, PORT, ADMIN_API_TOKEN, REFERRALS_DATA_DIR, ...), so
  // a system started with PORT=3917 is the one the demo talks to.
  const config = loadConfig(process.env, { requireDatabaseUrl: false });
  const apiUrl = apiBaseUrl(config);
  // As a marketplace backend would: the service token for the marketplace routes, the admin token
  // only for what an operator does (referral codes, payout status).
  const admin = config.adminApiToken ?? readToken(dataDirectory(), 'admin');
  if (!admin)
    throw new Error(
      `no admin token: set ADMIN_API_TOKEN, or run \`pnpm start\` once (it keeps one in ${dataDirectory()}/admin-token)`,
    );
  const service = config.serviceApiToken ?? readToken(dataDirectory(), 'service');
  if (!service)
    throw new Error(
      `no service token: set SERVICE_API_TOKEN, or run \`pnpm start\` once (it keeps one in ${dataDirectory()}/service-token)`,
    );
  try {
    const ready = await fetch(`${apiUrl}/readyz`, { signal: AbortSignal.timeout(3_000) });
    if (!ready.ok) throw new Error(`answered ${ready.status}`);
  } catch (error) {
    throw new Error(
      `the API at ${apiUrl} is not ready (${error instanceof Error ? error.message : String(error)}); start it with \`pnpm start\`, with the same HOST and PORT as this demo`,
    );
  }
  const api = apiClient(apiUrl, { service, admin });
  const tag = randomBytes(2).toString('hex');

  say(`Referral chain (through ${apiUrl}):`);
  const grand = await api.signUp(`ana_${tag}`);
  const grandCode = await api.createReferralCode(grand.id, `ANA-${tag}`);
  const direct = await api.signUp(`ben_${tag}`, grandCode.code);
  const directCode = await api.createReferralCode(direct.id, `BEN-${tag}`);
  const buyer = await api.signUp(`cleo_${tag}`, directCode.code);
  say(
    `  ${grand.handle} (code ${grandCode.code}) referred ${direct.handle} (code ${directCode.code}), who referred ${buyer.handle}`,
  );
  say(
    `  each purchase by ${buyer.handle} pays ${direct.handle} ${directCode.directRateBps / 100} % and ${grand.handle} ${directCode.grandRateBps / 100} %`,
  );

  const creator = await api.signUp(`dana_${tag}`);
  const catalogue = [
    await api.createContent(creator.id, 'Sourdough at home', 1_200, 'EUR'),
    await api.createContent(creator.id, 'Knife skills', 2_500, 'EUR'),
    await api.createContent(creator.id, 'Fermentation, the long course', 4_000, 'EUR'),
  ];
  say(
    `  creator ${creator.handle} publishes ${catalogue.map((c) => `"${c.title}" (${money(c.price, c.currency)})`).join(', ')}`,
  );

  say();
  say(`Purchases by ${buyer.handle}, confirmed (the confirm answers at once; the worker pays the referrers):`);
  const started = Date.now();
  const ids: string[] = [];
  for (const content of catalogue) {
    const purchase = await api.createPurchase(buyer.id, content.id, `demo-${tag}-${content.id}`);
    const confirmed = await api.confirmPurchase(purchase.id, `pay_demo_${tag}_${ids.length}`);
    ids.push(confirmed.id);
    say(
      `  ${confirmed.id}  ${money(confirmed.price, confirmed.currency).padStart(10)}  referral payout ${confirmed.referralPayoutStatus}`,
    );
  }
  for (const id of ids) {
    const status = await settle(api, id, 30_000);
    say(`  ${id}  ${describe(status)}  (${Date.now() - started} ms after the first confirm)`);
  }

  say();
  const big = await api.createContent(creator.id, 'Whole-animal butchery', 10_000, 'EUR');
  const purchase = await api.createPurchase(buyer.id, big.id, `demo-${tag}-${big.id}`);
  await api.confirmPurchase(purchase.id, `pay_demo_${tag}_big`);
  say(
    `A purchase whose direct commission (${money(1_000, 'EUR')}) is above the demo treasury's limit of ${money(TREASURY_LIMIT, 'EUR')}:`,
  );
  const outcome = await settle(api, purchase.id, 90_000, (status) =>
    say(`  attempt ${status.attempts} failed: ${status.lastError ?? '?'} — the worker retries with backoff`),
  );
  say(`  ${purchase.id}  ${describe(outcome)}`);

  const databaseUrl = config.databaseUrl || embeddedDatabaseUrl(config.embeddedPgPort);
  const cli = 'npm run manage-referral-payouts --';
  say();
  if (outcome.status === 'failed') {
    say('Repair it with the operator CLI (it pays through the same gateway as the worker):');
    say(`  export DATABASE_URL=${databaseUrl} PAYOUT_GATEWAY=http TREASURY_URL=${TREASURY_URL}`);
    say(`  ${cli} --status ${purchase.id}`);
    say(`  ${cli} --list-failed`);
    say(`  curl -X POST ${TREASURY_URL}/lift-limit        # the treasury now accepts larger transfers`);
    say(`  ${cli} --process ${purchase.id}`);
  } else {
    say('It was paid: this system pays through the ledger gateway, a transfer inside the database, which');
    say('nothing refuses. To watch a payout fail and repair it, pay through an external treasury instead:');
    say(
      `  1. in a new terminal:       pnpm demo treasury      (refuses transfers above ${money(TREASURY_LIMIT, 'EUR')})`,
    );
    say('  2. stop `pnpm start` and switch the database to the http gateway (it pays through one only):');
    say(`       DATABASE_URL=${databaseUrl} ${cli} --set-gateway http`);
    say(
      `  3. start it again as:        PAYOUT_GATEWAY=http TREASURY_URL=${TREASURY_URL} PAYOUT_RETRY_LIMIT=1 PAYOUT_RETRY_DELAY_SECONDS=1 pnpm start`,
    );
    say('  4. run `pnpm demo` again: its last purchase fails, and it prints the CLI commands that repair it.');
    say();
    say('Meanwhile, the operator CLI:');
    say(`  export DATABASE_URL=${databaseUrl}`);
    say(`  ${cli} --status ${purchase.id}`);
    say(`  ${cli} --list-failed`);
    say(`  ${cli} --process ${purchase.id}      # safe to repeat: a completed purchase is never paid twice`);
  }
}

/** Polls the payout status until it leaves `queued`; reports each new failed attempt meanwhile. */
async function settle(
  api: ApiClient,
  purchaseId: string,
  timeoutMs: number,
  onAttempt?: (status: ApiPayoutStatus) => void,
): Promise<ApiPayoutStatus> {
  const deadline = Date.now() + timeoutMs;
  let seenAttempts = 0;
  for (;;) {
    const status = await api.payoutStatus(purchaseId);
    if (status.status !== 'queued') return status;
    if (status.lastError && status.attempts > seenAttempts) {
      seenAttempts = status.attempts;
      onAttempt?.(status);
    }
    if (Date.now() > deadline) {
      say(`  still queued after ${timeoutMs / 1000} s: is the worker running? (${status.attempts} attempts so far)`);
      return status;
    }
    await sleep(100);
  }
}

function describe(status: ApiPayoutStatus): string {
  const paid = status.payouts
    .filter((p) => p.status === 'paid')
    .map((p) => `${p.level} ${money(p.amount, p.currency)}`)
    .join(', ');
  if (status.status === 'completed') return `completed: paid ${paid}`;
  if (status.status === 'failed') return `failed after ${status.attempts} attempts: ${status.lastError ?? ''}`;
  return `${status.status ?? 'pending'}${status.reason ? ` (${status.reason})` : ''}`;
}

/**
 * A stand-in for an external treasury, the far side of PAYOUT_GATEWAY=http: the fake treasury the
 * tests use, refusing (422, a permanent answer) transfers above its limit until the limit is lifted.
 * A repeated idempotency key gets the first answer's reference back, as a real treasury's would.
 */
async function runTreasury() {
  let limit = TREASURY_LIMIT;
  const refuseAboveLimit = {
    kind: 'refuse',
    status: 422,
    code: 'limit_exceeded',
    when: (transfer) => transfer.amount > limit,
    message: (transfer) =>
      `${money(transfer.amount, transfer.currency)} is above the limit of ${money(limit, transfer.currency)}`,
  } satisfies TreasuryMode;
  const treasury = await startFakeTreasury(refuseAboveLimit, {
    port: TREASURY_PORT,
    controls: {
      'POST /lift-limit': () => {
        limit = Number.POSITIVE_INFINITY;
        say('limit lifted: every transfer is accepted from now on');
        return { limit: null };
      },
    },
    onAnswer: ({ transfer, status, reference }) => {
      const what = `${money(transfer.amount, transfer.currency)} to ${transfer.beneficiaryId} (${transfer.idempotencyKey})`;
      say(reference ? `paid ${what} as ${reference}` : `refused ${what} (${status}): above the limit`);
    },
  });
  say(`demo treasury on ${treasury.url}: pays transfers up to ${money(TREASURY_LIMIT, 'EUR')}, refuses larger ones`);
  say(`  lift the limit: curl -X POST ${TREASURY_URL}/lift-limit`);
  say(
    `  run the system against it: PAYOUT_GATEWAY=http TREASURY_URL=${TREASURY_URL} PAYOUT_RETRY_LIMIT=1 PAYOUT_RETRY_DELAY_SECONDS=1 pnpm start`,
  );
  say(
    '  (a database that paid through the ledger before: npm run manage-referral-payouts -- --set-gateway http first)',
  );
  say('  stop: Ctrl-C');
  closeWithGrace(() => treasury.close());
}
