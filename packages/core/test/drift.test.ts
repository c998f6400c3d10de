import { describe, expect, it } from 'vitest';
import { driftBetween, parseIdempotencyKey, type RecordedLevelRow } from '../src/reconciliation/drift.ts';
import type { TreasuryTransfer } from '../src/reconciliation/treasury-books.ts';

const purchaseId = '7d9f3c2a-1b4e-4c8a-9f00-0123456789ab';
const key = { purchaseId, level: 'direct' as const };
const transfer: TreasuryTransfer = {
  idempotencyKey: `${purchaseId}:direct`,
  reference: 'tr_1',
  beneficiaryId: 'b1',
  amount: 1000,
  currency: 'EUR',
  createdAt: '2026-11-28T05:00:00.000Z',
};
const level = (overrides: Partial<RecordedLevelRow> = {}): RecordedLevelRow => ({
  purchase_id: purchaseId,
  level: 'direct',
  status: 'paid',
  beneficiary_id: 'b1',
  amount: 1000,
  currency: 'EUR',
  reference: 'tr_1',
  paid_at: new Date('2026-11-28T05:00:01.000Z'),
  in_flight: false,
  ...overrides,
});

describe('idempotency keys', () => {
  it('reads our <purchase id>:<level> keys and nothing else', () => {
    expect(parseIdempotencyKey(`${purchaseId}:grand`)).toEqual({ purchaseId, level: 'grand' });
    expect(parseIdempotencyKey(`${purchaseId}:other`)).toBeNull();
    expect(parseIdempotencyKey(`order-1:direct`)).toBeNull();
  });
});

describe('drift between a level and the transfer under its key', () => {
  it('is none when a paid level matches the transfer, or when neither side paid', () => {
    expect(driftBetween(key, level(), transfer)).toBeNull();
    expect(driftBetween(key, level({ status: 'pending', reference: null, paid_at: null }), null)).toBeNull();
    expect(driftBetween(key, null, null)).toBeNull();
  });

  it('is missing_at_treasury for a paid level the treasury does not have', () => {
    expect(driftBetween(key, level(), null)).toMatchObject({ kind: 'missing_at_treasury', treasury: null });
  });

  it('is a mismatch when a paid level differs in amount, currency or beneficiary', () => {
    for (const differs of [{ amount: 999 }, { currency: 'USD' }, { beneficiary_id: 'b2' }]) {
      expect(driftBetween(key, level(differs), transfer)?.kind).toBe('mismatch');
    }
  });

  it('is an unrecorded transfer, fixable only when it matches the level we planned', () => {
    const pending = { status: 'pending' as const, reference: null, paid_at: null };
    expect(driftBetween(key, level(pending), transfer)).toMatchObject({ kind: 'unrecorded_transfer', fixable: true });
    expect(driftBetween(key, level({ ...pending, amount: 5 }), transfer)).toMatchObject({
      kind: 'unrecorded_transfer',
      fixable: false,
    });
    expect(driftBetween(key, null, transfer)).toMatchObject({
      kind: 'unrecorded_transfer',
      fixable: false,
      ours: null,
    });
  });

  it('is none for a level whose purchase holds a lease: its transfer is in flight', () => {
    expect(driftBetween(key, level({ status: 'pending', in_flight: true }), transfer)).toBeNull();
  });

  it('reports both sides with our currency trimmed and times as ISO text', () => {
    expect(driftBetween(key, level({ currency: 'EUR ', amount: 1 }), transfer)).toEqual({
      kind: 'mismatch',
      purchaseId,
      level: 'direct',
      idempotencyKey: `${purchaseId}:direct`,
      ours: {
        status: 'paid',
        beneficiaryId: 'b1',
        amount: 1,
        currency: 'EUR',
        reference: 'tr_1',
        paidAt: '2026-11-28T05:00:01.000Z',
      },
      treasury: {
        reference: 'tr_1',
        beneficiaryId: 'b1',
        amount: 1000,
        currency: 'EUR',
        createdAt: '2026-11-28T05:00:00.000Z',
      },
      fixable: false,
    });
  });
});
