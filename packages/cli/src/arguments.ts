import yargs from 'yargs';
import { DomainError, MAX_FAILED_PAGE, parseReconcileSince, RECONCILE_DEFAULT_WINDOW_DAYS } from '@referrals/core';

export const PROGRAM = 'manage-referral-payouts';

const LIST_LIMIT_DEFAULT = 50;
const CONCURRENCY_DEFAULT = 4;
const CONCURRENCY_MAX = 32;

/** Bad invocation: exit 2 before anything touches the database. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export type Command =
  | { kind: 'status'; purchaseId: string }
  | { kind: 'process'; purchaseId: string }
  | { kind: 'list-failed'; limit: number; cursor: string | undefined }
  | { kind: 'process-all-failed'; concurrency: number }
  | { kind: 'summary' }
  | { kind: 'write-off'; purchaseId: string; reason: string }
  | { kind: 'reconcile'; since: Date | undefined };

export interface Invocation {
  command: Command;
  json: boolean;
  verbose: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const COMMAND_FLAGS = ['status', 'process', 'list-failed', 'process-all-failed', 'summary', 'write-off', 'reconcile'] as const;

const RETRY_HINT = `Run "${PROGRAM} --help" for usage.`;

/**
 * Parses the command line strictly. `--help` prints usage and exits 0 (yargs does that itself);
 * anything else that is wrong throws a UsageError.
 */
export function parseArguments(argv: string[]): Invocation {
  const parser = yargs(argv)
    .scriptName(PROGRAM)
    .usage(
      `Usage: npm run ${PROGRAM} -- <command> [options]\n\n` +
        'Inspect and repair referral payouts directly in the database named by DATABASE_URL.\n' +
        'Payouts go through the gateway configured by PAYOUT_GATEWAY (and TREASURY_URL), as the worker does.',
    )
    .option('status', { type: 'string', describe: 'Show the referral payout status of one purchase', requiresArg: true, group: 'Commands (exactly one):' })
    .option('process', { type: 'string', describe: 'Process the referral payouts of one purchase now', requiresArg: true, group: 'Commands (exactly one):' })
    .option('list-failed', { type: 'boolean', describe: 'List purchases whose referral payouts failed, newest first', group: 'Commands (exactly one):' })
    .option('process-all-failed', { type: 'boolean', describe: 'Retry every failed purchase, oldest first', group: 'Commands (exactly one):' })
    .option('summary', { type: 'boolean', describe: 'Show payout health: counts, backlog, recent failures', group: 'Commands (exactly one):' })
    .option('write-off', { type: 'string', describe: 'Give up on a failed purchase\'s unpaid payouts (needs --reason)', requiresArg: true, group: 'Commands (exactly one):' })
    .option('reason', { type: 'string', describe: 'With --write-off: why, kept in the purchase\'s history', requiresArg: true })
    .option('reconcile', { type: 'boolean', describe: 'Compare recorded payouts with the treasury\'s transfers and report every difference', group: 'Commands (exactly one):' })
    .option('json', { type: 'boolean', default: false, describe: 'Print one JSON document on stdout instead of text' })
    .option('limit', { type: 'number', describe: `With --list-failed: how many to show (default ${LIST_LIMIT_DEFAULT}, max ${MAX_FAILED_PAGE})`, requiresArg: true })
    .option('cursor', { type: 'string', describe: 'With --list-failed: the page after a previous one (its "Next page" / nextCursor)', requiresArg: true })
    .option('concurrency', { type: 'number', describe: `With --process-all-failed: purchases processed at once (default ${CONCURRENCY_DEFAULT}, 1..${CONCURRENCY_MAX})`, requiresArg: true })
    .option('since', { type: 'string', describe: `With --reconcile: start of the window, a date or ISO-8601 time (default ${RECONCILE_DEFAULT_WINDOW_DAYS} days ago)`, requiresArg: true })
    .option('verbose', { type: 'boolean', default: false, describe: 'Log to stderr and show stacks of errors' })
    .example(`npm run ${PROGRAM} -- --status <purchase-id>`, '')
    .example(`npm run ${PROGRAM} -- --process <purchase-id>`, '')
    .example(`npm run ${PROGRAM} -- --list-failed --limit 20`, '')
    .example(`npm run ${PROGRAM} -- --process-all-failed --concurrency 8`, '')
    .example(`npm run ${PROGRAM} -- --summary --json`, '')
    .example(`npm run ${PROGRAM} -- --write-off <purchase-id> --reason "beneficiary account closed"`, '')
    .example(`npm run ${PROGRAM} -- --reconcile --since 2026-11-20`, '')
    .epilogue('Exit codes: 0 success, 1 something is still failed (or drift remains), 2 usage or configuration error, 3 not found.')
    .help('help')
    .alias('help', 'h')
    .version(false)
    .strict()
    .parserConfiguration({ 'camel-case-expansion': false, 'duplicate-arguments-array': false })
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((message, error) => {
      throw new UsageError(`${message || error?.message || 'invalid arguments'}. ${RETRY_HINT}`);
    });

  const args = parser.parseSync();
  if (args._.length > 0) throw new UsageError(`unexpected argument "${String(args._[0])}". ${RETRY_HINT}`);

  const given = COMMAND_FLAGS.filter((flag) => args[flag] !== undefined && args[flag] !== false);
  if (given.length === 0) throw new UsageError(`give one of ${COMMAND_FLAGS.map((f) => `--${f}`).join(', ')}. ${RETRY_HINT}`);
  if (given.length > 1) throw new UsageError(`give only one command, got ${given.map((f) => `--${f}`).join(' and ')}`);
  const flag = given[0]!;

  if (args.limit !== undefined && flag !== 'list-failed') throw new UsageError('--limit only applies to --list-failed');
  if (args.cursor !== undefined && flag !== 'list-failed') throw new UsageError('--cursor only applies to --list-failed');
  if (args.concurrency !== undefined && flag !== 'process-all-failed') throw new UsageError('--concurrency only applies to --process-all-failed');
  if (args.reason !== undefined && flag !== 'write-off') throw new UsageError('--reason only applies to --write-off');
  if (args.since !== undefined && flag !== 'reconcile') throw new UsageError('--since only applies to --reconcile');

  const common = { json: args.json === true, verbose: args.verbose === true };
  switch (flag) {
    case 'status':
    case 'process':
      return { ...common, command: { kind: flag, purchaseId: purchaseId(flag, args[flag]) } };
    case 'list-failed':
      return {
        ...common,
        command: { kind: flag, limit: boundedInteger('limit', args.limit, LIST_LIMIT_DEFAULT, 1, MAX_FAILED_PAGE), cursor: args.cursor },
      };
    case 'process-all-failed':
      return {
        ...common,
        command: { kind: flag, concurrency: boundedInteger('concurrency', args.concurrency, CONCURRENCY_DEFAULT, 1, CONCURRENCY_MAX) },
      };
    case 'summary':
      return { ...common, command: { kind: flag } };
    case 'write-off': {
      const reason = typeof args.reason === 'string' ? args.reason.trim() : '';
      if (reason === '') throw new UsageError('--write-off needs --reason "why the payouts are given up"');
      return { ...common, command: { kind: flag, purchaseId: purchaseId(flag, args[flag]), reason } };
    }
    case 'reconcile':
      return { ...common, command: { kind: flag, since: args.since === undefined ? undefined : since(args.since) } };
  }
}

function purchaseId(flag: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`--${flag} needs a purchase id`);
  if (!UUID.test(value.trim())) throw new UsageError(`--${flag}: "${value}" is not a purchase id (a uuid)`);
  return value.trim().toLowerCase();
}

function since(value: unknown): Date {
  try {
    return parseReconcileSince(String(value));
  } catch (error) {
    if (error instanceof DomainError) throw new UsageError(`--${error.message}`);
    throw error;
  }
}

function boundedInteger(flag: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`--${flag} must be an integer from ${min} to ${max}`);
  }
  return value;
}
