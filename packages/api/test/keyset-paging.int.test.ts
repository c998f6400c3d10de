import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { markReferralPayoutFailed } from '@referrals/core';
import { confirmedPurchase, seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { admin, expectHealthyLedger, rowCounts, testApp } from './support.ts';

const t = useTestDatabase();
let app: ReturnType<typeof testApp>;

/**
 * Failed purchases whose failure and confirmation times differ by microseconds inside one
 * millisecond (two share the very same microsecond, so the id decides), and one a millisecond later.
 * A cursor cut to the millisecond skips all but the first of them when paging newest first.
 */
const TIMES = [
  '2026-11-20T08:00:00.123400Z',
  '2026-11-20T08:00:00.123456Z',
  '2026-11-20T08:00:00.123456Z',
  '2026-11-20T08:00:00.123789Z',
  '2026-11-20T08:00:00.124000Z',
];
/** Purchase ids newest first: by time, then by id, both descending, as the lists sort. */
let newestFirst: string[];

beforeAll(async () => {
  app = testApp(t.db, t.url);
  const chain = await seedReferralChain(t.db);
  const rows: { id: string; at: string }[] = [];
  for (const at of TIMES) {
    const { id } = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    await markReferralPayoutFailed(t.db, id, 'worker', 'treasury said no');
    await sql`update purchases set referral_payout_failed_at = ${at}::timestamptz, confirmed_at = ${at}::timestamptz
               where id = ${id}`.execute(t.db);
    rows.push({ id, at });
  }
  newestFirst = rows
    .sort((a, b) => (a.at === b.at ? (a.id < b.id ? 1 : -1) : a.at < b.at ? 1 : -1))
    .map((row) => row.id);
});
afterAll(() => app.close());
afterEach(() => expectHealthyLedger(t.db));

/** Follows nextCursor one item at a time and returns the ids in the order served. */
async function walk(path: string): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const query: string = cursor === null ? 'limit=1' : `limit=1&cursor=${encodeURIComponent(cursor)}`;
    const response = await app.inject({
      method: 'GET',
      url: `${path}${path.includes('?') ? '&' : '?'}${query}`,
      headers: admin,
    });
    expect(response.statusCode).toBe(200);
    const page = response.json() as { items: { purchaseId: string }[]; nextCursor: string | null };
    seen.push(...page.items.map((item) => item.purchaseId));
    cursor = page.nextCursor;
  } while (cursor !== null && seen.length <= TIMES.length);
  return seen;
}

describe('keyset paging across rows of one millisecond', () => {
  it('the failed list serves every failure once, newest first, one page at a time', async () => {
    expect(await walk('/api/marketplace/referral-payouts/failed')).toEqual(newestFirst);
  });

  it('the search serves every confirmation once, newest first, one page at a time', async () => {
    expect(await walk('/api/marketplace/referral-payouts?status=failed')).toEqual(newestFirst);
  });

  it('both lists refuse a cursor that is not one of theirs with 400 and write nothing', async () => {
    const before = await rowCounts(t.db);
    const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const id = newestFirst[0]!;
    for (const path of ['/api/marketplace/referral-payouts/failed', '/api/marketplace/referral-payouts']) {
      for (const cursor of [
        'bm9wZQ',
        forged(['2026-02-31T00:00:00.000000Z', id]),
        forged(['2026-11-20T08:00:00.1234567Z', id]),
        forged(['2026-11-20 08:00:00.123456+00', id]),
        forged(['2026-11-20T08:00:00.123456Z', 'not-a-uuid']),
        forged(['2026-11-20T08:00:00.123456Z', id, 'extra']),
      ]) {
        const response = await app.inject({
          method: 'GET',
          url: `${path}?limit=1&cursor=${encodeURIComponent(cursor)}`,
          headers: admin,
        });
        expect(response.statusCode, `${path} ${cursor}`).toBe(400);
        expect(response.json()).toMatchObject({ error: { code: 'validation_failed' } });
      }
    }
    expect(await rowCounts(t.db)).toEqual(before);
  });
});
