import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@referrals/core';

const base = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/referrals',
  ADMIN_API_TOKEN: 'shared-token-0123456789',
};

describe('ADMIN_TOKENS', () => {
  it('is empty by default and parses name:token pairs, trimming blanks', () => {
    expect(loadConfig(base).adminTokens).toEqual([]);
    const config = loadConfig({ ...base, ADMIN_TOKENS: ' alice:alice-token-0123456789 , bob.k:bob:token-0123456789,' });
    expect(config.adminTokens).toEqual([
      { name: 'alice', token: 'alice-token-0123456789' },
      { name: 'bob.k', token: 'bob:token-0123456789' },
    ]);
  });

  it.each([
    ['alice', /^ADMIN_TOKENS needs a token of at least 16 characters for "alice"/],
    ['alice:short', /^ADMIN_TOKENS needs a token of at least 16 characters for "alice"/],
    [':alice-token-0123456789', /^ADMIN_TOKENS entries are name:token/],
    ['al ice:alice-token-0123456789', /^ADMIN_TOKENS entries are name:token/],
    ['alice:alice-token-0123456789,Alice:other-token-0123456789', /^ADMIN_TOKENS names "Alice" twice/],
    ['alice:same-token-0123456789,bob:same-token-0123456789', /^ADMIN_TOKENS gives "bob" a token already in use/],
    ['alice:shared-token-0123456789', /^ADMIN_TOKENS gives "alice" a token already in use/],
  ])('refuses %s naming the variable and never the token', (value, message) => {
    let error: unknown;
    try {
      loadConfig({ ...base, ADMIN_TOKENS: value });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toMatch(/token-0123456789/);
  });
});
