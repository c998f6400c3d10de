import { Writable } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logging.ts';

function capture(isTTY: boolean) {
  const lines: string[] = [];
  const destination = Object.assign(
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(
          ...chunk
            .toString()
            .split('\n')
            .filter((line) => line !== ''),
        );
        done();
      },
    }),
    { isTTY },
  );
  return { destination, lines };
}

describe('createLogger', () => {
  it('writes one readable line per event on a terminal', () => {
    const { destination, lines } = capture(true);
    createLogger({ level: 'info', service: 'api', destination }).info(
      { purchaseId: 'p-1', level2: { a: 1 } },
      'payout completed',
    );
    expect(lines).toHaveLength(1);
    const plain = stripVTControlCharacters(lines[0]!);
    expect(plain).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: api: payout completed \{"purchaseId":"p-1","level2":\{"a":1\}\}$/,
    );
  });

  it('writes JSON with the service name anywhere else', () => {
    const { destination, lines } = capture(false);
    const logger = createLogger({ level: 'warn', service: 'worker', destination });
    logger.info('not at this level');
    logger.warn({ purchaseId: 'p-2' }, 'retrying');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, service: 'worker', purchaseId: 'p-2', msg: 'retrying' });
  });
});
