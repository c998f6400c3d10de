import { expect, it } from 'vitest';
import { getReferralPayoutStatus } from '@referrals/core';
import { confirmedPurchase, seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { completeWithPaidLevels } from '../src/payouts/payout-store.ts';

const t = useTestDatabase();

// A network attempt that finds nothing left unpaid (every level paid earlier, or, as here, none
// recorded) completes with no answers of its own, and only once.
it('completes a purchase with nothing left unpaid without new answers, and only once', async () => {
  const chain = await seedReferralChain(t.db, { price: 10_000 });
  const purchase = await confirmedPurchase(t.db, chain.buyer.id, chain.content.id);

  const first = await completeWithPaidLevels(t.db, purchase.id, [], { actor: 'worker', operator: null });
  expect(first).toMatchObject({ completed: true, purchase: { referral_payout_status: 'completed' } });
  const again = await completeWithPaidLevels(t.db, purchase.id, [], { actor: 'worker', operator: null });
  expect(again).toMatchObject({ completed: false, purchase: { referral_payout_status: 'completed' } });

  const status = await getReferralPayoutStatus(t.db, purchase.id);
  expect(status.events.map((e) => [e.from, e.to, e.actor])).toEqual([
    [null, 'queued', 'api'],
    ['queued', 'completed', 'worker'],
  ]);
  expect(status.attempts).toBe(1);
});
