import { describe, expect, it } from 'vitest';
import { TransferSlots } from '@referrals/core';

/** A transfer the test finishes by hand. */
function pending() {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return { done, finish };
}

describe('TransferSlots', () => {
  it('keeps at most `capacity` transfers running and starts waiters in arrival order', async () => {
    const slots = new TransferSlots(2);
    const started: number[] = [];
    const gates = [pending(), pending(), pending(), pending()];
    const runs = gates.map((gate, i) =>
      slots.run(async () => {
        started.push(i);
        await gate.done;
        return i;
      }),
    );
    await Promise.resolve();
    expect(started).toEqual([0, 1]);
    expect([slots.inFlight, slots.waiting]).toEqual([2, 2]);

    gates[1]!.finish();
    await runs[1];
    await Promise.resolve();
    expect(started).toEqual([0, 1, 2]);
    expect([slots.inFlight, slots.waiting]).toEqual([2, 1]);

    gates[0]!.finish();
    gates[2]!.finish();
    gates[3]!.finish();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3]);
    expect(started).toEqual([0, 1, 2, 3]);
    expect([slots.inFlight, slots.waiting]).toEqual([0, 0]);
  });

  it('frees the slot of a transfer that throws', async () => {
    const slots = new TransferSlots(1);
    await expect(slots.run(() => Promise.reject(new Error('treasury unreachable')))).rejects.toThrow(
      'treasury unreachable',
    );
    expect(slots.inFlight).toBe(0);
    expect(await slots.run(async () => 'paid')).toBe('paid');
  });

  it('refuses a capacity that is not a positive integer', () => {
    for (const capacity of [0, -1, 1.5]) expect(() => new TransferSlots(capacity)).toThrow(RangeError);
  });
});
