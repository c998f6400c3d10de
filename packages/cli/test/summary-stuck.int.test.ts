import { describe, expect, it } from 'vitest';
import { countStuckQueued } from '@referrals/core';
import { confirmedPurchase, seedReferralChain, waitFor } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { runCli } from './run-cli.ts';

const t = useTestDatabase();

describe('--summary', () => {
  it('counts queued purchases with no live job for longer than STUCK_QUEUED_AFTER_SECONDS', async () => {
    const chain = await seedReferralChain(t.db);
    const stuck = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    const waiting = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);
    // Relayed, and no worker ever ran here: no job exists. The other one's row is still unpublished,
    // so the relay would give it a job: it is not stuck.
    await t.db.updateTable('outbox').set({ published_at: new Date() }).where('aggregate_id', '=', stuck.id).execute();
    await waitFor(async () => (await countStuckQueued(t.db, 1)) === 1, { what: 'the purchase stuck for 1 s' });

    const human = await runCli(['--summary'], { DATABASE_URL: t.url, STUCK_QUEUED_AFTER_SECONDS: '1' });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^Queued +2 /m);
    expect(human.stdout).toMatch(/^Stuck queued +1 +\(no live job for over 1s; the worker re-enqueues them\)$/m);
    const json = await runCli(['--summary', '--json'], { DATABASE_URL: t.url, STUCK_QUEUED_AFTER_SECONDS: '1' });
    expect(JSON.parse(json.stdout).stuckQueued).toEqual({ count: 1, afterSeconds: 1 });

    // With the default threshold (5 minutes) neither is stuck yet.
    const byDefault = await runCli(['--summary'], { DATABASE_URL: t.url });
    expect(byDefault.stdout).toMatch(/^Stuck queued +0 +\(no live job for over 5m 0s\)$/m);
    expect(waiting.referralPayoutStatus).toBe('queued');
  });
});
