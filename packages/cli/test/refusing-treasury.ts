import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TransferSeen {
  idempotencyKey: string;
  beneficiaryId: string;
  amount: number;
}

/**
 * A real treasury on a loopback port that deduplicates by Idempotency-Key, and answers 500 to any
 * transfer `refuse` says no to: tests decide per beneficiary or key which payouts keep failing.
 */
export async function startRefusingTreasury() {
  let refuse: (transfer: TransferSeen) => boolean = () => false;
  let delayMs = 0;
  let held: (() => void)[] | undefined;
  const accepted = new Map<string, { reference: string; transfer: TransferSeen }>();
  const requests: TransferSeen[] = [];

  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      if (held) held.push(answerTransfer);
      else setTimeout(answerTransfer, delayMs);
    });
    const answerTransfer = () => {
      const answer = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(payload));
      };
      const parsed = JSON.parse(body) as TransferSeen;
      const transfer = { idempotencyKey: String(req.headers['idempotency-key']), beneficiaryId: parsed.beneficiaryId, amount: parsed.amount };
      requests.push(transfer);
      const known = accepted.get(transfer.idempotencyKey);
      if (known) return answer(200, { reference: known.reference });
      if (refuse(transfer)) return answer(500, { error: { code: 'unavailable', message: 'treasury refused the transfer' } });
      const reference = `tr_${randomUUID()}`;
      accepted.set(transfer.idempotencyKey, { reference, transfer });
      answer(201, { reference });
    };
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    refuseWhen(predicate: (transfer: TransferSeen) => boolean) {
      refuse = predicate;
    },
    /** Keeps every request unanswered (its caller in flight) until release(). */
    hold() {
      held ??= [];
    },
    heldCount: () => held?.length ?? 0,
    release() {
      const waiting = held ?? [];
      held = undefined;
      for (const answerTransfer of waiting) setTimeout(answerTransfer, delayMs);
    },
    /** Answers every later request this much later, so concurrent processors really overlap. */
    setDelay(ms: number) {
      delayMs = ms;
    },
    /** Every request received, in arrival order. */
    requests,
    /** Distinct transfers that moved money: one per idempotency key. */
    accepted: () => [...accepted.values()].map((a) => a.transfer),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export type RefusingTreasury = Awaited<ReturnType<typeof startRefusingTreasury>>;
