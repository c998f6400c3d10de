/**
 * Configuration, parsed once from the environment into a frozen object. An invalid value stops
 * start-up with a message naming the variable; nothing else in the code reads process.env.
 */
export type PayoutGatewayKind = 'ledger' | 'http';

export interface Config {
  readonly databaseUrl: string;
  readonly host: string;
  readonly port: number;
  readonly logLevel: string;
  readonly adminApiToken: string | undefined;
  readonly platformFeeBps: number;
  readonly referralMinPayout: number;
  readonly payoutGateway: PayoutGatewayKind;
  readonly treasuryUrl: string | undefined;
  readonly treasuryTimeoutMs: number;
  readonly payoutRetryLimit: number;
  readonly payoutRetryDelaySeconds: number;
  readonly outboxPollIntervalMs: number;
  readonly outboxRetentionDays: number;
  readonly workerConcurrency: number;
  readonly workerMetricsPort: number | undefined;
  readonly embeddedPgPort: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function read(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(`${name} must be an integer, got "${raw}"`);
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be between ${min} and ${max}, got ${raw}`);
  }
  return value;
}

function optionalInteger(env: Env, name: string, min: number, max: number): number | undefined {
  return read(env, name) === undefined ? undefined : integer(env, name, 0, min, max);
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = read(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be a URL, got "${raw}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')}, got "${parsed.protocol}"`);
  }
  return raw;
}

export interface LoadConfigOptions {
  /** Whether DATABASE_URL must be present (the launcher starts an embedded database when unset). */
  requireDatabaseUrl?: boolean;
}

export function loadConfig(env: Env = process.env, options: LoadConfigOptions = {}): Config {
  const databaseUrl = url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  if (databaseUrl === undefined && options.requireDatabaseUrl !== false) {
    throw new ConfigError('DATABASE_URL is required (e.g. postgres://postgres@127.0.0.1:5432/referrals)');
  }

  const logLevel = read(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }

  const payoutGateway = read(env, 'PAYOUT_GATEWAY') ?? 'ledger';
  if (payoutGateway !== 'ledger' && payoutGateway !== 'http') {
    throw new ConfigError(`PAYOUT_GATEWAY must be "ledger" or "http", got "${payoutGateway}"`);
  }
  const treasuryUrl = url(env, 'TREASURY_URL', ['http:', 'https:']);
  if (payoutGateway === 'http' && treasuryUrl === undefined) {
    throw new ConfigError('TREASURY_URL is required when PAYOUT_GATEWAY is "http"');
  }

  const adminApiToken = read(env, 'ADMIN_API_TOKEN');
  if (adminApiToken !== undefined && adminApiToken.length < 16) {
    throw new ConfigError('ADMIN_API_TOKEN must be at least 16 characters');
  }

  return Object.freeze({
    databaseUrl: databaseUrl ?? '',
    host: read(env, 'HOST') ?? '127.0.0.1',
    port: integer(env, 'PORT', 3000, 0, 65535),
    logLevel,
    adminApiToken,
    platformFeeBps: integer(env, 'PLATFORM_FEE_BPS', 3000, 0, 10000),
    referralMinPayout: integer(env, 'REFERRAL_MIN_PAYOUT', 1, 1, Number.MAX_SAFE_INTEGER),
    payoutGateway,
    treasuryUrl,
    treasuryTimeoutMs: integer(env, 'TREASURY_TIMEOUT_MS', 5000, 1, 600_000),
    payoutRetryLimit: integer(env, 'PAYOUT_RETRY_LIMIT', 5, 0, 100),
    payoutRetryDelaySeconds: integer(env, 'PAYOUT_RETRY_DELAY_SECONDS', 2, 0, 3600),
    outboxPollIntervalMs: integer(env, 'OUTBOX_POLL_INTERVAL_MS', 1000, 10, 3_600_000),
    outboxRetentionDays: integer(env, 'OUTBOX_RETENTION_DAYS', 7, 1, 3650),
    workerConcurrency: integer(env, 'WORKER_CONCURRENCY', 8, 1, 256),
    workerMetricsPort: optionalInteger(env, 'WORKER_METRICS_PORT', 0, 65535),
    embeddedPgPort: integer(env, 'EMBEDDED_PG_PORT', 54329, 1, 65535),
  });
}
