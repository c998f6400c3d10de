import type { RetriedPayout, RetryCounts } from '@referrals/core';
import type { Output } from './command-context.ts';
import { statusLabel } from './format.ts';

export interface Progress {
  advance(item: RetriedPayout, counts: RetryCounts): void;
  finish(): void;
}

const BAR_WIDTH = 30;

/** A redrawn bar when `out` is a terminal, one plain line per purchase otherwise (logs, CI). */
export function createProgress(out: Output, total: number): Progress {
  let done = 0;
  if (out.isTTY) {
    const draw = (counts: RetryCounts) => {
      const filled = total === 0 ? BAR_WIDTH : Math.round((done / total) * BAR_WIDTH);
      out.write(
        `\r\x1b[K[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${done}/${total}  completed ${counts.completed}  failed ${counts.failed}`,
      );
    };
    draw({ completed: 0, failed: 0 });
    return {
      advance(_item, counts) {
        done++;
        draw(counts);
      },
      finish() {
        out.write('\n');
      },
    };
  }
  const width = String(total).length;
  return {
    advance(item) {
      done++;
      out.write(
        `[${String(done).padStart(width)}/${total}] ${item.purchaseId} ${statusLabel(item.status)}${item.error ? `: ${item.error}` : ''}\n`,
      );
    },
    finish() {},
  };
}
