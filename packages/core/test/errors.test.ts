import { describe, expect, it } from 'vitest';
import { isDatabaseUnavailable } from '@referrals/core';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isDatabaseUnavailable', () => {
  it.each([
    ['refused connection', withCode('ECONNREFUSED')],
    ['reset connection', withCode('ECONNRESET')],
    ['broken pipe (an errno shaped like a SQLSTATE)', withCode('EPIPE')],
    ['terminated backend, fast shutdown', withCode('57P01', 'terminating connection due to administrator command')],
    ['crash shutdown', withCode('57P02')],
    ['starting up or shutting down', withCode('57P03', 'the database system is starting up')],
    ['connection exception class', withCode('08006')],
    ['too many connections', withCode('53300')],
    ['socket closed under the client', new Error('Connection terminated unexpectedly')],
    ['pool checkout timeout', new Error('timeout exceeded when trying to connect')],
    ['every address refused', new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')])],
  ])('%s: yes', (_what, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    ['unique violation', withCode('23505')],
    ['invalid text representation', withCode('22P02')],
    ['character not in repertoire (NUL)', withCode('22021')],
    ['syntax error', withCode('42601')],
    ['a plain error', new Error('boom')],
    ['not an error', 'ECONNREFUSED'],
    ['nothing', undefined],
  ])('%s: no', (_what, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });
});
