import { describe, expect, it } from 'vitest';
import { errorMessage, isSettled } from '@referrals/core';

describe('errorMessage', () => {
  it('records an error by its message, anything else as text, at most 1000 characters', () => {
    expect(errorMessage(new Error('treasury answered 503'))).toBe('treasury answered 503');
    expect(errorMessage('plain text')).toBe('plain text');
    expect(errorMessage(42)).toBe('42');
    const exactly = 'x'.repeat(1000);
    expect(errorMessage(new Error(exactly))).toBe(exactly);
    const long = errorMessage(new Error(`${'y'.repeat(997)}zzzz`));
    expect(long).toHaveLength(1000);
    expect(long).toBe(`${'y'.repeat(997)}...`);
  });
});

describe('isSettled', () => {
  it('holds for completed and not_applicable only', () => {
    expect(['completed', 'not_applicable', 'queued', 'failed', null].map(isSettled)).toEqual([
      true,
      true,
      false,
      false,
      false,
    ]);
  });
});
