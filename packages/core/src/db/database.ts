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
}

export function createPool(connectionString: string, options: DatabaseOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'referral-payouts',
    types,
  });
  // An idle client dropped by the server (restart, failover, terminated backend) is discarded by the
  // pool itself; without a listener the event would crash the process instead.
  pool.on('error', () => {});
  return pool;
}

export function createDatabase(connectionString: string, options: DatabaseOptions = {}): Database {
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool: createPool(connectionString, options) }) });
}
