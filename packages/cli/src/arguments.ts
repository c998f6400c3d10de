import yargs from 'yargs';
import {
  DomainError,
  MAX_FAILED_PAGE,
  MAX_PAUSE_REASON,
  PAYOUT_GATEWAY_KINDS,
  type PayoutGatewayKind,
  parseReconcileSince,
  RECONCILE_DEFAULT_WINDOW_DAYS,
} from '@referrals/core';

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
  | { kind: 'reconcile'; since: Date | undefined; fix: boolean }
  | { kind: 'pause'; reason: string }
  | { kind: 'resume' }
  | { kind: 'set-gateway'; gateway: PayoutGatewayKind };

export interface Invocation {
  command: Command;
  json: boolean;
  verbose: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const COMMAND_FLAGS = [
  'status',
  'process',
  'list-failed',
  'process-all-failed',
  'summary',
  'write-off',
  'reconcile',
  'pause',
  'resume',
  'set-gateway',
] as const;

/** Options that belong to one command; given with another one they are a usage error. */
const OPTION_OF_COMMAND: Record<string, readonly (typeof COMMAND_FLAGS)[number][]> = {
  limit: ['list-failed'],
  cursor: ['list-failed'],
  concurrency: ['process-all-failed'],
  reason: ['write-off', 'pause'],
  since: ['reconcile'],
  fix: ['reconcile'],
};

const RETRY_HINT = `Run "${PROGRAM} --help" for usage.`;

/**
 * Parses the command line strictly. `--help` prints usage and exits 0 (yargs does that itself);
 * anything else that is wrong throws a UsageError with one line: yargs' own strict mode,
 * `.conflicts()` between commands, `.coerce()` of each value and `.check()` of what is left.
 */
export function parseArguments(argv: string[]): Invocation {
  const commands = 'Commands (exactly one):';
  const parser = yargs(argv)
    .scriptName(PROGRAM)
    .usage(
      `Usage: npm run ${PROGRAM} -- <command> [options]\n\n` +
        'Inspect and repair referral payouts directly in the database named by DATABASE_URL.\n' +
        'Payouts go through the gateway configured by PAYOUT_GATEWAY (and TREASURY_URL), as the worker does.',
    )
    .option('status', {
      type: 'string',
      describe: 'Show the referral payout status of one purchase',
      requiresArg: true,
      group: commands,
      coerce: purchaseId('status'),
    })
    .option('process', {
      type: 'string',
      describe: 'Process the referral payouts of one purchase now',
      requiresArg: true,
      group: commands,
      coerce: purchaseId('process'),
    })
    .option('list-failed', {
      type: 'boolean',
      describe: 'List purchases whose referral payouts failed, newest first',
      group: commands,
    })
    .option('process-all-failed', {
      type: 'boolean',
      describe: 'Retry every failed purchase, oldest first',
      group: commands,
    })
    .option('summary', {
      type: 'boolean',
      describe: 'Show payout health: counts, backlog, recent failures',
      group: commands,
    })
    .option('write-off', {
      type: 'string',
      describe: "Give up on a failed purchase's unpaid payouts (needs --reason)",
      requiresArg: true,
      group: commands,
      coerce: purchaseId('write-off'),
    })
    .option('reconcile', {
      type: 'boolean',
      describe: "Compare recorded payouts with the treasury's transfers and report every difference",
      group: commands,
    })
    .option('pause', {
      type: 'boolean',
      describe: 'Pause referral payouts for every worker until --resume (needs --reason)',
      group: commands,
    })
    .option('resume', { type: 'boolean', describe: 'Resume paused referral payouts', group: commands })
    .option('set-gateway', {
      type: 'string',
      describe:
        "Switch the database's payout gateway (ledger or http); refused while any payout is left to settle. Restart the API and workers with the new PAYOUT_GATEWAY afterwards",
      requiresArg: true,
      group: commands,
      coerce: gatewayName,
    })
    .option('reason', {
      type: 'string',
      describe: `With --write-off: why, kept in the purchase's history; with --pause: why, kept with who and when (1..${MAX_PAUSE_REASON} characters)`,
      requiresArg: true,
      coerce: (value: string) => value.trim(),
    })
    .option('json', { type: 'boolean', default: false, describe: 'Print one JSON document on stdout instead of text' })
    .option('limit', {
      type: 'number',
      describe: `With --list-failed: how many to show (default ${LIST_LIMIT_DEFAULT}, max ${MAX_FAILED_PAGE})`,
      requiresArg: true,
      coerce: boundedInteger('limit', 1, MAX_FAILED_PAGE),
    })
    .option('cursor', {
      type: 'string',
      describe: 'With --list-failed: the page after a previous one (its "Next page" / nextCursor)',
      requiresArg: true,
    })
    .option('concurrency', {
      type: 'number',
      describe: `With --process-all-failed: purchases processed at once (default ${CONCURRENCY_DEFAULT}, 1..${CONCURRENCY_MAX})`,
      requiresArg: true,
      coerce: boundedInteger('concurrency', 1, CONCURRENCY_MAX),
    })
    .option('since', {
      type: 'string',
      describe: `With --reconcile: start of the window, a date or ISO-8601 time (default ${RECONCILE_DEFAULT_WINDOW_DAYS} days ago)`,
      requiresArg: true,
      coerce: since,
    })
    .option('fix', {
      type: 'boolean',
      describe: 'With --reconcile: record unrecorded transfers that match the planned level as paid (sends no money)',
    })
    .option('verbose', { type: 'boolean', default: false, describe: 'Log to stderr and show stacks of errors' })
    .conflicts(Object.fromEntries(COMMAND_FLAGS.map((flag) => [flag, COMMAND_FLAGS.filter((other) => other !== flag)])))
    .updateStrings({ 'Arguments %s and %s are mutually exclusive': 'give only one command, got --%s and --%s' })
    .check((args) => {
      const flag = COMMAND_FLAGS.find((name) => args[name] !== undefined && args[name] !== false);
      if (flag === undefined) return `give one of ${COMMAND_FLAGS.map((f) => `--${f}`).join(', ')}`;
      for (const [option, owners] of Object.entries(OPTION_OF_COMMAND)) {
        if (args[option] !== undefined && !owners.includes(flag))
          return `--${option} only applies to ${owners.map((c) => `--${c}`).join(' and ')}`;
      }
      if (flag === 'write-off' && !args.reason) return '--write-off needs --reason "why the payouts are given up"';
      if (flag === 'pause' && !args.reason) return '--pause needs --reason "why payouts are paused"';
      // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
      if (flag === 'pause' && (args.reason!.length > MAX_PAUSE_REASON || /[\u0000-\u001F\u007F]/.test(args.reason!))) {
        return `--reason must be one line of at most ${MAX_PAUSE_REASON} characters`;
      }
      return true;
    })
    .example(`npm run ${PROGRAM} -- --status <purchase-id>`, '')
    .example(`npm run ${PROGRAM} -- --process <purchase-id>`, '')
    .example(`npm run ${PROGRAM} -- --list-failed --limit 20`, '')
    .example(`npm run ${PROGRAM} -- --process-all-failed --concurrency 8`, '')
    .example(`npm run ${PROGRAM} -- --summary --json`, '')
    .example(`npm run ${PROGRAM} -- --write-off <purchase-id> --reason "beneficiary account closed"`, '')
    .example(`npm run ${PROGRAM} -- --reconcile --since 2026-11-20 --fix`, '')
    .example(`npm run ${PROGRAM} -- --pause --reason "treasury incident"`, '')
    .example(`npm run ${PROGRAM} -- --set-gateway http`, '')
    .epilogue(
      'Exit codes: 0 success, 1 something is still failed (or drift remains, or payouts are paused), 2 usage or configuration error, 3 not found.',
    )
    .help('help')
    .alias('help', 'h')
    .version(false)
    .strict()
    .parserConfiguration({ 'camel-case-expansion': false, 'duplicate-arguments-array': false })
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((message, error) => {
      // yargs hands an error thrown by this handler inside `.check()` back to it once more.
      if (error instanceof UsageError) throw error;
      throw new UsageError(`${message || error?.message || 'invalid arguments'}. ${RETRY_HINT}`);
    });

  const args = parser.parseSync();
  const common = { json: args.json === true, verbose: args.verbose === true };
  // `.check()` has made sure exactly one command is given and its values are valid.
  if (args.status !== undefined) return { ...common, command: { kind: 'status', purchaseId: args.status } };
  if (args.process !== undefined) return { ...common, command: { kind: 'process', purchaseId: args.process } };
  if (args.pause) return { ...common, command: { kind: 'pause', reason: args.reason ?? '' } };
  if (args.resume) return { ...common, command: { kind: 'resume' } };
  if (args['set-gateway'] !== undefined) {
    return { ...common, command: { kind: 'set-gateway', gateway: args['set-gateway'] } };
  }
  if (args['write-off'] !== undefined) {
    return { ...common, command: { kind: 'write-off', purchaseId: args['write-off'], reason: args.reason ?? '' } };
  }
  if (args['list-failed']) {
    return {
      ...common,
      command: { kind: 'list-failed', limit: args.limit ?? LIST_LIMIT_DEFAULT, cursor: args.cursor },
    };
  }
  if (args['process-all-failed']) {
    return { ...common, command: { kind: 'process-all-failed', concurrency: args.concurrency ?? CONCURRENCY_DEFAULT } };
  }
  if (args.reconcile) return { ...common, command: { kind: 'reconcile', since: args.since, fix: args.fix === true } };
  return { ...common, command: { kind: 'summary' } };
}

function purchaseId(flag: string) {
  return (value: string): string => {
    if (value.trim() === '') throw new UsageError(`--${flag} needs a purchase id`);
    if (!UUID.test(value.trim())) throw new UsageError(`--${flag}: "${value}" is not a purchase id (a uuid)`);
    return value.trim().toLowerCase();
  };
}

function gatewayName(value: string): PayoutGatewayKind {
  const name = value.trim();
  const known = PAYOUT_GATEWAY_KINDS.find((kind) => kind === name);
  if (!known) throw new UsageError(`--set-gateway must be ${PAYOUT_GATEWAY_KINDS.join(' or ')}, got "${value}"`);
  return known;
}

function since(value: string): Date {
  try {
    return parseReconcileSince(value);
  } catch (error) {
    if (error instanceof DomainError) throw new UsageError(`--${error.message}`);
    throw error;
  }
}

function boundedInteger(flag: string, min: number, max: number) {
  return (value: number): number => {
    if (!Number.isInteger(value) || value < min || value > max)
      throw new UsageError(`--${flag} must be an integer from ${min} to ${max}`);
    return value;
  };
}
