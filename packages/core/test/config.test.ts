import { describe, expect, it } from 'vitest';
import { ConfigError, ConfigSchema, loadConfig } from '@referrals/core';

const base = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/referrals' };

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig(base);
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 3000,
      logLevel: 'info',
      platformFeeBps: 3000,
      referralMinPayout: 1,
      payoutGateway: 'ledger',
      treasuryTimeoutMs: 5000,
      payoutRetryLimit: 5,
      payoutRetryDelaySeconds: 2,
      outboxPollIntervalMs: 1000,
      outboxRetentionDays: 7,
      workerConcurrency: 32,
      workerMetricsPort: undefined,
      embeddedPgPort: 54329,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it.each([
    [{}, /DATABASE_URL is required/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL must use postgres/],
    [{ ...base, PORT: 'eighty' }, /PORT must be an integer/],
    [{ ...base, PORT: '70000' }, /PORT must be between 0 and 65535/],
    [{ ...base, PLATFORM_FEE_BPS: '10001' }, /PLATFORM_FEE_BPS/],
    [{ ...base, REFERRAL_MIN_PAYOUT: '1.5' }, /REFERRAL_MIN_PAYOUT must be an integer/],
    [{ ...base, PAYOUT_GATEWAY: 'paypal' }, /PAYOUT_GATEWAY must be "ledger" or "http"/],
    [{ ...base, PAYOUT_GATEWAY: 'http' }, /TREASURY_URL is required/],
    [{ ...base, TREASURY_URL: 'ftp://x' }, /TREASURY_URL must use http/],
    [{ ...base, LOG_LEVEL: 'loud' }, /LOG_LEVEL must be one of/],
    [{ ...base, ADMIN_API_TOKEN: 'short' }, /ADMIN_API_TOKEN must be at least 16/],
    [{ ...base, WORKER_CONCURRENCY: '0' }, /WORKER_CONCURRENCY must be between 1/],
  ])('refuses %j naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('refuses a DATABASE_URL that is not a URL', () => {
    expect(() => loadConfig({ DATABASE_URL: 'not a url' })).toThrow('DATABASE_URL must be a URL, got "not a url"');
  });

  it.each(Object.keys(ConfigSchema.properties).filter((name) => name !== 'HOST'))(
    'names %s when its value is invalid',
    (name) => {
      expect(() => loadConfig({ ...base, [name]: 'x!' })).toThrow(new RegExp(`^${name} `));
    },
  );

  it('reads each variable into its camelCase key', () => {
    const config = loadConfig({ ...base, WORKER_METRICS_PORT: '9464', ADMIN_API_TOKEN: ' 0123456789abcdef ' });
    expect(config.workerMetricsPort).toBe(9464);
    expect(config.adminApiToken).toBe('0123456789abcdef');
    expect(Object.keys(config)).toHaveLength(Object.keys(ConfigSchema.properties).length);
  });

  it('lets the launcher start without DATABASE_URL', () => {
    expect(loadConfig({}, { requireDatabaseUrl: false }).databaseUrl).toBe('');
  });
});
