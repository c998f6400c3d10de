import { Kysely, PostgresDialect, type Transaction } from 'kysely';
import pg from 'pg';
import type { DB } from './types.ts';

export type Database = Kysely<DB>;
export type Tx = Transaction<DB>;

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/** bigint columns and count(*) arrive as numbers; a value beyond 2^53 is an error, never rounded. */
function parseSafeInteger(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`integer ${text} exceeds the safe range`);
  return value;
}

const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID) return parseSafeInteger;
    if (oid === NUMERIC_OID) return (text: string) => (/^-?\d+$/.test(text) ? parseSafeInteger(text) : Number(text));
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export interface DatabaseOptions {
  max?: number;
  applicationName?: string;
  /** How long a checkout may wait for a connection (to a down server, or from a busy pool). */
  connectionTimeoutMs?: number;
}

// A checkout that waits longer is failed, so a request during an outage or a blackholed network
// answers instead of hanging until the client gives up.
const DEFAULT_CONNECTION_TIMEOUT_MS = 10_000;

export function createPool(connectionString: string, options: DatabaseOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'referral-payouts',
    types,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? DEFAULT_CONNECTION_TIMEOUT_MS,
  });
  // An idle client dropped by the server (restart, failover, terminated backend) is discarded by the
  // pool itself; without a listener the event would crash the process instead.
  pool.on('error', () => {});
  // pg-pool takes that listener off a client while it is checked out, and Kysely adds none, so a
  // connection that dies inside a query or transaction would emit an uncaught 'error' and end the
  // process. The statement in flight rejects with the same error, which fails that request or job
  // alone; the pool discards the client when it is released, since it is no longer queryable.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  return pool;
}

export function createDatabase(connectionString: string, options: DatabaseOptions = {}): Database {
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool: createPool(connectionString, options) }) });
}
