import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `probe` until it returns a value other than undefined/false, or fails after `timeoutMs`
 * with the last value seen. A wait on a condition, never a fixed sleep.
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000) * timeoutScale();
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value as T;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${options.what ?? 'condition'} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`,
      );
    }
    await sleep(options.intervalMs ?? 25);
  }
}

/**
 * Factor on the waits of a slower run: `pnpm test:coverage` sets TEST_TIMEOUT_SCALE, since every
 * process it measures runs instrumented.
 */
export function timeoutScale(): number {
  const scale = Number(process.env.TEST_TIMEOUT_SCALE);
  return Number.isFinite(scale) && scale >= 1 ? scale : 1;
}
