/**
 * Scenario 1, the physical limit: pgbench replaying confirm's transaction on the real schema
 * (lock the purchase, mark it confirmed, three ledger rows in one statement under the balance
 * trigger, outbox row, event row) with 4 clients. Confirm throughput is judged against this.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { REFERRAL_PAYOUT_TOPIC } from '@referrals/core';
import { type Bench, PLATFORM_FEE_BPS, serverFacts, type ServerFacts } from '../harness.ts';
import { seedMarketplace, seedPending } from '../seed.ts';
import { round } from '../stats.ts';
import { startPostgresCpuSampler } from '../cpu.ts';

const run = promisify(execFile);

export interface PgbenchRun {
  synchronousCommit: string;
  clients: number;
  seconds: number;
  tps: number;
  latencyAvgMs: number;
  transactions: number;
  failed: number;
  /** CPU ms per transaction spent by Postgres (all its processes) while pgbench ran. */
  postgresCpuMsPerTransaction: number;
}

export interface PgbenchResult {
  pgbench: string;
  server: ServerFacts;
  cores: number;
  cpuModel: string;
  /** The run the confirm endpoint is judged against (server's synchronous_commit). */
  main: PgbenchRun;
  /** The same with synchronous_commit=off: how much of the ceiling is WAL flushes. */
  asyncCommit: PgbenchRun | undefined;
  /** ONE_STATEMENT_CONFIRM_SCRIPT at the server's synchronous_commit: what confirm in one round trip would reach. */
  oneStatement: PgbenchRun | undefined;
  script: string;
  oneStatementScript: string;
}

export function findPgbench(): string | undefined {
  const candidates = (process.env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, 'pgbench'));
  try {
    for (const version of readdirSync('/usr/lib/postgresql').sort().reverse())
      candidates.push(`/usr/lib/postgresql/${version}/bin/pgbench`);
  } catch {
    // no Debian-style install
  }
  return candidates.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

// What confirmPurchase does in one transaction, statement for statement; the purchase comes from a
// numbered list so no two clients take the same one.
export const CONFIRM_SCRIPT = `
BEGIN;
SELECT b.purchase_id AS pid, b.creator_id AS creator, b.price AS price, b.fee AS fee, b.share AS share, b.currency AS currency
  FROM bench_pending b JOIN purchases p ON p.id = b.purchase_id
  JOIN content c ON c.id = p.content_id LEFT JOIN user_referrals r ON r.user_id = p.buyer_id
 WHERE b.n = (SELECT nextval('bench_pending_seq')) FOR UPDATE OF p \\gset
UPDATE purchases SET status = 'confirmed', payment_reference = 'pay_' || id, confirmed_at = now(), platform_fee = :fee::bigint,
  referral_payout_status = 'queued', referral_payout_queued_at = now() WHERE id = :pid::uuid RETURNING *;
INSERT INTO ledger_entries (transaction_id, account, user_id, amount, currency, purchase_id)
  SELECT t.id, v.account, v.user_id, v.amount, :currency::char(3), :pid::uuid
    FROM (SELECT gen_random_uuid() AS id) t,
         (VALUES ('buyer_payment_clearing', NULL::uuid, -(:price)::bigint), ('creator_earnings', :creator::uuid, :share::bigint),
                 ('platform_treasury', NULL::uuid, :fee::bigint)) v(account, user_id, amount);
INSERT INTO outbox (topic, aggregate_id, payload) VALUES ('${REFERRAL_PAYOUT_TOPIC}', :pid::uuid, jsonb_build_object('purchaseId', :pid::text));
INSERT INTO referral_payout_events (purchase_id, from_status, to_status, actor, attempt) VALUES (:pid::uuid, NULL, 'queued', 'api', 0);
END;
`;

// The same confirm as ONE statement (data-modifying CTEs, autocommit): one round trip instead of
// seven. Not what the product does today: measured to size the gain of writing confirm this way.
export const ONE_STATEMENT_CONFIRM_SCRIPT = `
WITH pick AS (SELECT purchase_id, fee, share FROM bench_pending WHERE n = (SELECT nextval('bench_pending_seq'))),
confirmed AS (
  UPDATE purchases p SET status = 'confirmed', payment_reference = 'pay_' || p.id, confirmed_at = now(), platform_fee = pick.fee,
         referral_payout_status = CASE WHEN EXISTS (SELECT 1 FROM user_referrals r WHERE r.user_id = p.buyer_id) THEN 'queued' ELSE 'not_applicable' END,
         referral_payout_queued_at = now()
    FROM pick, content c
   WHERE p.id = pick.purchase_id AND p.status = 'pending' AND c.id = p.content_id
  RETURNING p.*, c.creator_id, pick.share),
ledger AS (
  INSERT INTO ledger_entries (transaction_id, account, user_id, amount, currency, purchase_id)
  SELECT t.id, v.account, v.user_id, v.amount, x.currency, x.id
    FROM confirmed x, (SELECT gen_random_uuid() AS id) t,
         LATERAL (VALUES ('buyer_payment_clearing', NULL::uuid, -x.price), ('creator_earnings', x.creator_id, x.share),
                         ('platform_treasury', NULL::uuid, x.platform_fee)) v(account, user_id, amount)),
queued AS (
  INSERT INTO outbox (topic, aggregate_id, payload)
  SELECT '${REFERRAL_PAYOUT_TOPIC}', id, jsonb_build_object('purchaseId', id) FROM confirmed WHERE referral_payout_status = 'queued'),
event AS (
  INSERT INTO referral_payout_events (purchase_id, from_status, to_status, actor, attempt)
  SELECT id, NULL, referral_payout_status, 'api', 0 FROM confirmed)
SELECT * FROM confirmed;
`;

async function pgbenchRun(
  bin: string,
  url: string,
  scriptFile: string,
  seconds: number,
  synchronousCommit: string | undefined,
): Promise<PgbenchRun> {
  const clients = 4;
  const env = {
    ...process.env,
    ...(synchronousCommit ? { PGOPTIONS: `-c synchronous_commit=${synchronousCommit}` } : {}),
  };
  const sampler = startPostgresCpuSampler();
  const { stdout } = await run(
    bin,
    ['-n', '-M', 'extended', '-c', String(clients), '-j', '2', '-T', String(seconds), '-f', scriptFile, url],
    {
      env,
      maxBuffer: 10 * 1024 * 1024,
    },
  );
  const postgresMs = sampler.stop();
  const number = (pattern: RegExp) => Number(pattern.exec(stdout)?.[1] ?? Number.NaN);
  const transactions = number(/number of transactions actually processed: (\d+)/);
  return {
    synchronousCommit: synchronousCommit ?? 'server default',
    clients,
    seconds,
    tps: round(number(/tps = ([\d.]+) \(without initial connection time\)/)),
    latencyAvgMs: round(number(/latency average = ([\d.]+) ms/)),
    transactions,
    failed: number(/number of failed transactions: (\d+)/) || 0,
    postgresCpuMsPerTransaction: round(postgresMs / Math.max(1, transactions), 3),
  };
}

export async function runPgbenchScenario(bench: Bench): Promise<PgbenchResult | { skipped: string }> {
  const bin = findPgbench();
  if (!bin) return { skipped: 'pgbench is not on PATH nor in /usr/lib/postgresql/*/bin' };
  const seconds = bench.quick ? 2 : 15;
  const asyncSeconds = bench.quick ? 0 : 5;
  const oneStatementSeconds = bench.quick ? 0 : 5;
  const db = await bench.database('pgbench');
  try {
    await seedMarketplace(db.pool);
    // Enough for ~5k commits/s, well above what two cores reach.
    await seedPending(db.pool, (seconds + asyncSeconds + oneStatementSeconds) * 5000, PLATFORM_FEE_BPS);
    const scriptFile = join(bench.logDir, 'pgbench-confirm.sql');
    writeFileSync(scriptFile, CONFIRM_SCRIPT);
    bench.log(`pgbench: 4 clients, ${seconds} s`);
    const main = await pgbenchRun(bin, db.url, scriptFile, seconds, undefined);
    const server = await serverFacts(db.pool);
    let asyncCommit: PgbenchRun | undefined;
    if (asyncSeconds > 0) {
      bench.log(`pgbench: synchronous_commit=off, ${asyncSeconds} s`);
      asyncCommit = await pgbenchRun(bin, db.url, scriptFile, asyncSeconds, 'off');
    }
    let oneStatement: PgbenchRun | undefined;
    if (oneStatementSeconds > 0) {
      const oneStatementFile = join(bench.logDir, 'pgbench-confirm-one-statement.sql');
      writeFileSync(oneStatementFile, ONE_STATEMENT_CONFIRM_SCRIPT);
      bench.log(`pgbench: confirm as one statement, ${oneStatementSeconds} s`);
      oneStatement = {
        ...(await pgbenchRun(bin, db.url, oneStatementFile, oneStatementSeconds, undefined)),
        synchronousCommit: 'server default, one statement',
      };
    }
    const version = (await run(bin, ['--version'])).stdout.trim();
    return {
      pgbench: `${bin} (${version})`,
      server,
      cores: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      main,
      asyncCommit,
      oneStatement,
      script: CONFIRM_SCRIPT.trim(),
      oneStatementScript: ONE_STATEMENT_CONFIRM_SCRIPT.trim(),
    };
  } finally {
    await db.drop();
  }
}
