import { ConfigError, DomainError, ensureDeploymentGateway, loadConfig, sqlState } from '@referrals/core';
import { type Command, parseArguments, PROGRAM, UsageError } from './arguments.ts';
import { type CommandContext, createCommandContext, createLogger, type Output } from './command-context.ts';
import { listFailed } from './commands/list-failed.ts';
import { processAllFailed } from './commands/process-all-failed.ts';
import { processOne } from './commands/process-one.ts';
import { showStatus } from './commands/status.ts';
import { reconcileWithTreasury } from './commands/reconcile.ts';
import { showSummary } from './commands/summary.ts';
import { pause, resume } from './commands/pause.ts';
import { setGateway } from './commands/set-gateway.ts';
import { writeOff } from './commands/write-off.ts';
import { EXIT, type ExitCode } from './exit-codes.ts';

export interface Io {
  argv: string[];
  env: Record<string, string | undefined>;
  stdout: Output;
  stderr: Output;
  /** Set when the operator asks a bulk run to stop (Ctrl-C): in-flight purchases finish, no new ones start. */
  interrupt: AbortSignal;
}

/** Parses, runs one command against core and returns the exit code; never throws. */
export async function run(io: Io): Promise<ExitCode> {
  let verbose = io.argv.includes('--verbose');
  let ctx: CommandContext | undefined;
  try {
    const invocation = parseArguments(io.argv);
    verbose = invocation.verbose;
    const config = loadConfig(io.env);
    const logger = createLogger(verbose);
    // Reconciliation keeps one session for the whole run and counts and repairs on another.
    const connections =
      invocation.command.kind === 'process-all-failed'
        ? invocation.command.concurrency + 1
        : invocation.command.kind === 'reconcile'
          ? 3
          : 2;
    ctx = createCommandContext(config, {
      logger,
      json: invocation.json,
      stdout: io.stdout,
      stderr: io.stderr,
      connections,
    });
    // Commands that pay or compare with the treasury do so through the database's gateway only.
    if (PAYING_COMMANDS.has(invocation.command.kind)) {
      await ensureDeploymentGateway(ctx.db, config.payoutGateway, 'cli');
    }
    return await dispatch(ctx, invocation.command, io.interrupt);
  } catch (error) {
    io.stderr.write(`${PROGRAM}: ${describe(error)}\n`);
    if (verbose && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`);
    return exitCode(error);
  } finally {
    await ctx?.db.destroy();
  }
}

const PAYING_COMMANDS = new Set<Command['kind']>(['process', 'process-all-failed', 'reconcile']);

function dispatch(ctx: CommandContext, command: Command, interrupt: AbortSignal): Promise<ExitCode> {
  switch (command.kind) {
    case 'status':
      return showStatus(ctx, command.purchaseId);
    case 'process':
      return processOne(ctx, command.purchaseId);
    case 'list-failed':
      return listFailed(ctx, command.limit, command.cursor);
    case 'process-all-failed':
      return processAllFailed(ctx, command.concurrency, interrupt);
    case 'summary':
      return showSummary(ctx);
    case 'write-off':
      return writeOff(ctx, command.purchaseId, command.reason);
    case 'reconcile':
      return reconcileWithTreasury(ctx, command.since, command.fix);
    case 'pause':
      return pause(ctx, command.reason);
    case 'resume':
      return resume(ctx);
    case 'set-gateway':
      return setGateway(ctx, command.gateway);
  }
}

function exitCode(error: unknown): ExitCode {
  if (error instanceof UsageError || error instanceof ConfigError) return EXIT.usage;
  if (error instanceof DomainError) {
    if (error.code === 'not_found') return EXIT.notFound;
    if (error.code === 'validation_failed') return EXIT.usage;
  }
  return EXIT.stillFailed;
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH']);

/** One line an operator can act on. */
function describe(error: unknown): string {
  if (error instanceof UsageError || error instanceof ConfigError || error instanceof DomainError) return error.message;
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
  if (code !== undefined && CONNECTION_CODES.has(code))
    return `cannot reach the database named by DATABASE_URL (${code})`;
  const state = sqlState(error);
  if (state === '42P01') return `the database is not migrated (${(error as Error).message}); run: npm run db:migrate`;
  if (state !== undefined) return `database error: ${(error as Error).message}`;
  const message = error instanceof Error ? error.message : String(error);
  return message === '' ? 'unexpected error (run with --verbose for details)' : message;
}
