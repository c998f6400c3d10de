import pino, { type Logger } from 'pino';
import {
  createDatabase,
  type Config,
  type Database,
  type PayoutContext,
  payoutContextFromConfig,
  type ReconciliationContext,
  treasuryBooksFromConfig,
} from '@referrals/core';
import { PROGRAM } from './arguments.ts';

export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** What every command gets: the database, the payout context shared with the worker, and output. */
export interface CommandContext {
  config: Config;
  db: Database;
  payouts: PayoutContext;
  reconciliation: ReconciliationContext;
  logger: Logger;
  stdout: Output;
  stderr: Output;
  json: boolean;
}

export function createLogger(verbose: boolean): Logger {
  // Logs go to stderr so stdout stays the command's result (and valid JSON under --json).
  return pino({ name: PROGRAM, level: verbose ? 'debug' : 'silent' }, pino.destination({ fd: 2, sync: true }));
}

export function createCommandContext(
  config: Config,
  options: { logger: Logger; json: boolean; stdout: Output; stderr: Output; connections: number },
): CommandContext {
  const db = createDatabase(config.databaseUrl, { max: options.connections, applicationName: PROGRAM });
  return {
    config,
    db,
    payouts: payoutContextFromConfig(config, { db, logger: options.logger }),
    reconciliation: {
      db,
      treasury: treasuryBooksFromConfig(config),
      gateway: config.payoutGateway,
      logger: options.logger,
    },
    logger: options.logger,
    stdout: options.stdout,
    stderr: options.stderr,
    json: options.json,
  };
}

export function printLine(ctx: Pick<CommandContext, 'stdout'>, text = ''): void {
  ctx.stdout.write(`${text}\n`);
}

/** Under --json a command prints exactly this one document. */
export function printJson(ctx: Pick<CommandContext, 'stdout'>, document: unknown): void {
  ctx.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
}
