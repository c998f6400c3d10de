import type { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export interface LoggerOptions {
  level: string;
  /** Names the process in every line (`api`, `worker`). */
  service: string;
  /** Where lines go; a terminal gets them readable, anything else one JSON object per line. */
  destination?: Writable & { isTTY?: boolean };
}

/**
 * The root logger of a process. On a terminal (`pnpm start` in a shell) lines are pretty-printed, one
 * per event; piped or collected (Docker, CI, a log shipper) they stay JSON, which is what tools parse.
 */
export function createLogger(options: LoggerOptions): Logger {
  const destination = options.destination ?? process.stdout;
  const settings = { level: options.level, base: { service: options.service, pid: process.pid } };
  if (!destination.isTTY) return pino(settings, destination);
  return pino(
    settings,
    pretty({
      destination,
      sync: true,
      colorize: true,
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss.l',
      // The API's request line already says what `request` holds.
      ignore: 'pid,hostname,service,request',
      messageFormat: '{service}: {msg}',
    }),
  );
}
