/**
 * Configuration, parsed once from the environment into a frozen object. An invalid value stops
 * start-up with a message naming the variable; nothing else in the code reads process.env.
 *
 * Adding a variable is a one-place change: add it to `ConfigSchema` below (name, type, default,
 * bounds, description). The typed `Config` key (camelCase of the name), validation and its error
 * message follow from the schema; then run `pnpm docs:config` to regenerate README's table (a test
 * fails while README and the schema differ). Only rules that involve two variables live in
 * `loadConfig` itself.
 */
import { type Static, type TLiteral, type TSchema, type TUnion, Type } from '@sinclair/typebox';
import { FormatRegistry } from '@sinclair/typebox';
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';

/** Annotations the README table reads besides `description` and `default`. */
interface Documented {
  description: string;
  /** What leaving the variable unset means, for variables without a default. */
  whenUnset?: string;
}

const URL_FORMAT = 'url';
if (!FormatRegistry.Has(URL_FORMAT)) FormatRegistry.Set(URL_FORMAT, (value) => URL.canParse(value));

function integer(minimum: number, maximum: number, fallback: number, doc: Documented) {
  return Type.Integer({ minimum, maximum, default: fallback, ...doc });
}

function url(protocols: readonly string[], doc: Documented) {
  return Type.String({ format: URL_FORMAT, protocols, ...doc });
}

function oneOf<const T extends readonly string[]>(values: T, fallback: T[number], doc: Documented) {
  return Type.Union(
    values.map((value) => Type.Literal(value)),
    { default: fallback, ...doc },
  ) as unknown as TUnion<TLiteral<T[number]>[]>;
}

/** STUCK_QUEUED_AFTER_SECONDS when unset (also what a summary without it uses). */
export const DEFAULT_STUCK_QUEUED_AFTER_SECONDS = 300;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const PAYOUT_GATEWAY_KINDS = ['ledger', 'http'] as const;
export type PayoutGatewayKind = (typeof PAYOUT_GATEWAY_KINDS)[number];

/** Every environment variable the processes read, in README order. */
export const ConfigSchema = Type.Object({
  DATABASE_URL: Type.Optional(
    url(['postgres:', 'postgresql:'], {
      description: 'Postgres connection string',
      whenUnset: 'required; `pnpm start` starts an embedded Postgres instead',
    }),
  ),
  HOST: Type.String({
    default: '127.0.0.1',
    description: "where the API listens (the worker's metrics bind to it too)",
  }),
  PORT: integer(0, 65535, 3000, { description: 'port the API listens on' }),
  LOG_LEVEL: oneOf(LOG_LEVELS, 'info', { description: 'pino level' }),
  ADMIN_API_TOKEN: Type.Optional(
    Type.String({
      minLength: 16,
      description: 'bearer token for admin routes',
      whenUnset: 'admin routes answer 401',
    }),
  ),
  ADMIN_TOKENS: Type.Optional(
    Type.String({
      description:
        'more admin tokens, one per operator: `alice:<token>,bob:<token>` (tokens at least 16 characters, all different); the purchase history then names who acted',
      whenUnset: 'only `ADMIN_API_TOKEN`',
    }),
  ),
  SERVICE_API_TOKEN: Type.Optional(
    Type.String({
      minLength: 16,
      description:
        'bearer token of the marketplace front end for the marketplace routes (users, content, purchases, confirm); an admin token is accepted there too',
      whenUnset: 'marketplace routes accept only an admin token',
    }),
  ),
  METRICS_TOKEN: Type.Optional(
    Type.String({
      minLength: 16,
      description: 'bearer token `/metrics` asks for',
      whenUnset: '`/metrics` is open',
    }),
  ),
  PLATFORM_FEE_BPS: integer(0, 10_000, 3000, {
    description: "platform fee in basis points; a code's direct + grand rate may not exceed it",
  }),
  REFERRAL_MIN_PAYOUT: integer(1, Number.MAX_SAFE_INTEGER, 1, {
    description: 'minor units; a level below it is not paid',
  }),
  PAYOUT_GATEWAY: oneOf(PAYOUT_GATEWAY_KINDS, 'ledger', {
    description: '`ledger` credits referral earnings in the same transaction; `http` calls the treasury',
  }),
  TREASURY_URL: Type.Optional(
    url(['http:', 'https:'], {
      description: 'the treasury service; payouts are `POST {TREASURY_URL}/transfers` with an `Idempotency-Key`',
      whenUnset: 'required when `PAYOUT_GATEWAY` is `http`',
    }),
  ),
  TREASURY_TIMEOUT_MS: integer(1, 600_000, 5000, { description: 'per transfer' }),
  TREASURY_MAX_IN_FLIGHT: integer(1, 10_000, 256, {
    description:
      'transfers a worker keeps in flight to the treasury at once, whatever `WORKER_CONCURRENCY` and its database connections',
  }),
  PAYOUT_RETRY_LIMIT: integer(0, 100, 5, {
    description: 'retries after the first attempt before a purchase is `failed`',
  }),
  PAYOUT_RETRY_DELAY_SECONDS: integer(0, 3600, 2, {
    description: 'first retry delay, doubling each time (0 = immediate)',
  }),
  OUTBOX_POLL_INTERVAL_MS: integer(10, 3_600_000, 1000, {
    description: "relay's fallback poll; LISTEN/NOTIFY wakes it at once",
  }),
  OUTBOX_RETENTION_DAYS: integer(1, 3650, 7, {
    description: 'the worker deletes outbox rows published longer ago than this (hourly)',
  }),
  IDEMPOTENCY_KEY_TTL_HOURS: integer(1, 8760, 24, {
    description: 'how long an `Idempotency-Key` replays its first response; the worker forgets older keys (hourly)',
  }),
  WORKER_CONCURRENCY: integer(1, 256, 32, { description: 'payouts in flight per worker process' }),
  STUCK_QUEUED_AFTER_SECONDS: integer(1, 604_800, DEFAULT_STUCK_QUEUED_AFTER_SECONDS, {
    description:
      'a `queued` purchase with no live payout job and no activity for this long is stuck: the worker re-enqueues it and `--summary` counts it',
  }),
  STUCK_QUEUED_SWEEP_INTERVAL_SECONDS: integer(1, 86_400, 60, {
    description: 'how often each worker looks for stuck `queued` purchases (one sweep at a time across workers)',
  }),
  WORKER_METRICS_PORT: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 65535, description: "worker's Prometheus `/metrics`", whenUnset: 'off' }),
  ),
  EMBEDDED_PG_PORT: integer(1, 65535, 54329, { description: 'port of the embedded Postgres of `pnpm start`' }),
});

type ConfigEnv = Static<typeof ConfigSchema>;
type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Lowercase<Head>}${Capitalize<CamelCase<Tail>>}`
  : Lowercase<S>;
type FromSchema = { readonly [K in keyof ConfigEnv as CamelCase<K & string>]-?: ConfigEnv[K] };

export interface NamedToken {
  readonly name: string;
  readonly token: string;
}

/**
 * `databaseUrl` is '' only when a caller allowed it to be unset (the launcher). `adminTokens` is
 * ADMIN_TOKENS parsed into its named tokens (empty when unset).
 */
export type Config = Readonly<
  Omit<FromSchema, 'databaseUrl' | 'adminTokens'> & { databaseUrl: string; adminTokens: readonly NamedToken[] }
>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;
type VariableName = keyof typeof ConfigSchema.properties;

function camelCase(name: string): string {
  return name.toLowerCase().replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

function read(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** Environment values are strings; integers are converted only when they are written as one. */
function convert(schema: TSchema, raw: string): unknown {
  return schema.type === 'integer' && /^-?\d+$/.test(raw) ? Number(raw) : raw;
}

function describeChoices(values: readonly string[]): string {
  return values.length === 2 ? `"${values[0]}" or "${values[1]}"` : `one of ${values.join(', ')}`;
}

function literals(schema: TSchema): string[] {
  return (schema.anyOf as TSchema[]).map((member) => String(member.const));
}

function message(error: ValueError, raw: string): string {
  const name = error.path.slice(1);
  const { schema } = error;
  switch (error.type) {
    case ValueErrorType.Integer:
      return `${name} must be an integer, got "${raw}"`;
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.IntegerMaximum:
      return `${name} must be between ${schema.minimum} and ${schema.maximum}, got ${raw}`;
    case ValueErrorType.Union:
      return `${name} must be ${describeChoices(literals(schema))}, got "${raw}"`;
    case ValueErrorType.StringMinLength:
      return `${name} must be at least ${schema.minLength} characters`;
    case ValueErrorType.StringFormat:
      return `${name} must be a URL, got "${raw}"`;
    default:
      return `${name} is invalid (${error.message}), got "${raw}"`;
  }
}

const OPERATOR_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** `alice:<token>,bob:<token>`: names are unique, tokens at least 16 characters and all different. */
function namedTokens(raw: string | undefined, adminApiToken: string | undefined): NamedToken[] {
  if (raw === undefined) return [];
  const tokens: NamedToken[] = [];
  for (const entry of raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '')) {
    const colon = entry.indexOf(':');
    const name = colon < 0 ? entry : entry.slice(0, colon).trim();
    const token = colon < 0 ? '' : entry.slice(colon + 1).trim();
    // The token itself is never echoed: this message ends up in logs.
    if (!OPERATOR_NAME.test(name)) {
      throw new ConfigError(
        `ADMIN_TOKENS entries are name:token with a name of letters, digits, "_", "." or "-" (1..64), got "${name.slice(0, 64)}"`,
      );
    }
    if (token.length < 16) throw new ConfigError(`ADMIN_TOKENS needs a token of at least 16 characters for "${name}"`);
    if (tokens.some((t) => t.name.toLowerCase() === name.toLowerCase()))
      throw new ConfigError(`ADMIN_TOKENS names "${name}" twice`);
    if (tokens.some((t) => t.token === token) || token === adminApiToken) {
      throw new ConfigError(`ADMIN_TOKENS gives "${name}" a token already in use; every operator needs their own`);
    }
    tokens.push(Object.freeze({ name, token }));
  }
  return tokens;
}

export interface LoadConfigOptions {
  /** Whether DATABASE_URL must be present (the launcher starts an embedded database when unset). */
  requireDatabaseUrl?: boolean;
}

export function loadConfig(env: Env = process.env, options: LoadConfigOptions = {}): Config {
  const properties: Record<string, TSchema> = ConfigSchema.properties;
  const values: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(properties)) {
    const raw = read(env, name);
    if (raw !== undefined) values[name] = convert(schema, raw);
  }
  Value.Default(ConfigSchema, values);

  const error = Value.Errors(ConfigSchema, values).First();
  if (error !== undefined) throw new ConfigError(message(error, read(env, error.path.slice(1)) ?? ''));

  for (const [name, schema] of Object.entries(properties)) {
    const protocols = schema.protocols as string[] | undefined;
    const value = values[name];
    if (protocols === undefined || typeof value !== 'string') continue;
    const { protocol } = new URL(value);
    if (!protocols.includes(protocol)) {
      throw new ConfigError(`${name} must use ${protocols.join(' or ')}, got "${protocol}"`);
    }
  }

  const parsed = values as ConfigEnv;
  if (parsed.DATABASE_URL === undefined && options.requireDatabaseUrl !== false) {
    throw new ConfigError('DATABASE_URL is required (e.g. postgres://postgres@127.0.0.1:5432/referrals)');
  }
  if (parsed.PAYOUT_GATEWAY === 'http' && parsed.TREASURY_URL === undefined) {
    throw new ConfigError('TREASURY_URL is required when PAYOUT_GATEWAY is "http"');
  }

  const config: Record<string, unknown> = {};
  for (const name of Object.keys(properties) as VariableName[]) config[camelCase(name)] = parsed[name];
  config.databaseUrl = parsed.DATABASE_URL ?? '';
  config.adminTokens = Object.freeze(namedTokens(parsed.ADMIN_TOKENS, parsed.ADMIN_API_TOKEN));
  return Object.freeze(config) as Config;
}
