import { randomUUID } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { httpTreasuryBooks, reconcile, type ReconcileProgress } from '@referrals/core';
import { seedPaidPurchases, seedReferralChain } from '@referrals/testing';
import { useTestDatabase, useFakeTreasury } from '@referrals/testing/vitest';

const t = useTestDatabase();
const logger = pino({ level: 'silent' });
const treasury = useFakeTreasury();

const context = () => ({
  db: t.db,
  treasury: httpTreasuryBooks({ treasuryUrl: treasury.url, timeoutMs: 5_000 }),
  gateway: 'http',
  logger,
});

describe('reconcile over more transfers than one page', () => {
  it('reads every page, keeps complete counts and lists only the first drift items', async () => {
    const since = new Date();
    const chain = await seedReferralChain(t.db, { price: 10_000 });
    const transfers = await seedPaidPurchases(t.db, chain, 120);
    treasury.seed(transfers);
    // 60 of our paid levels are unknown to the treasury: more than one page of them too.
    for (const transfer of transfers.slice(0, 60)) treasury.forget(transfer.idempotencyKey);
    treasury.alter(transfers[100]!.idempotencyKey, { amount: 1 });
    treasury.seed(
      Array.from({ length: 70 }, () => ({
        idempotencyKey: `${randomUUID()}:grand`,
        beneficiaryId: randomUUID(),
        amount: 5,
        currency: 'EUR',
      })),
    );

    const progress: ReconcileProgress[] = [];
    const lists = treasury.listRequests().length;
    const report = await reconcile(context(), {
      actor: 'cli',
      since,
      pageSize: 50,
      maxListed: 20,
      onProgress: (p) => progress.push(p),
    });

    expect(report.driftCounts).toEqual({ unrecorded_transfer: 70, missing_at_treasury: 60, mismatch: 1 });
    expect(report.drift).toHaveLength(20);
    expect(report.driftTruncated).toBe(true);
    expect(report.treasuryTransfers).toBe(240 - 60 + 70);
    expect(report.recordedLevels).toBe(240);
    // 180 transfers still on the treasury's books + 70 unknown keys, 50 a page.
    const requests = treasury.listRequests().slice(lists);
    expect(requests).toHaveLength(5);
    expect(requests.every((r) => r.limit === 50)).toBe(true);
    expect(requests[0]!.cursor).toBeNull();
    expect(progress.filter((p) => p.phase === 'treasury').map((p) => p.pages)).toEqual([1, 2, 3, 4, 5]);
    expect(progress.filter((p) => p.phase === 'recorded').map((p) => p.items)).toEqual([50, 60]);
    expect(progress.at(-1)!.drift).toBe(131);
  });

  it('reconciles 100k transfers with the heap flat from the first pages to the last', async () => {
    const since = new Date();
    const chain = await seedReferralChain(t.db, { price: 10_000 });
    const transfers = await seedPaidPurchases(t.db, chain, 50_000);
    treasury.seed(transfers);
    transfers.length = 0;

    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const heap: number[] = [];
    const report = await reconcile(context(), {
      actor: 'cli',
      since,
      pageSize: 1000,
      onProgress: (p) => {
        if (p.phase === 'treasury' && p.pages % 10 === 0) {
          gc();
          heap.push(process.memoryUsage().heapUsed);
        }
      },
    });

    expect(report.treasuryTransfers).toBe(100_000);
    expect(report.drift).toEqual([]);
    expect(heap).toHaveLength(10);
    // Holding the window's keys alone would add ~10 MB by the last page, its transfers ~30 MB.
    const growth = Math.max(...heap) - heap[0]!;
    expect(
      growth,
      `heap after every 10 pages (MB): ${heap.map((h) => (h / 2 ** 20).toFixed(1)).join(', ')}`,
    ).toBeLessThan(4 * 2 ** 20);
  }, 300_000);
});
