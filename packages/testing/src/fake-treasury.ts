import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * How the fake treasury answers `POST /transfers`:
 * * `succeed` — records the transfer and answers 201 `{ reference }`;
 * * `fail` — answers 500 to the next `times` requests without recording anything, then succeeds
 *   (`times: Infinity` fails until the mode changes); `only` limits the failures to some keys;
 * * `hang` — never answers (the caller's timeout fires); nothing is recorded;
 * * `drop-response` — records the transfer, then destroys the socket before answering, for the
 *   next `times` requests (default: until the mode changes);
 * * `slow` — records the transfer on arrival and answers after `delayMs`.
 */
export type TreasuryMode =
  | { kind: 'succeed' }
  | { kind: 'fail'; times: number; only?: (idempotencyKey: string) => boolean }
  | { kind: 'hang' }
  | { kind: 'drop-response'; times?: number }
  | { kind: 'slow'; delayMs: number };

export interface AcceptedTransfer {
  idempotencyKey: string;
  reference: string;
  beneficiaryId: string;
  amount: number;
  currency: string;
}

export interface FakeTreasury {
  /** Base URL to put in TREASURY_URL. */
  readonly url: string;
  setMode(mode: TreasuryMode): void;
  /** Distinct transfers the treasury accepted: one per idempotency key, however often it was sent. */
  accepted(): AcceptedTransfer[];
  /** Requests received for a key, accepted or not. */
  requestsFor(idempotencyKey: string): number;
  /** Requests received in total. */
  readonly requestCount: number;
  /** Requests whose connection is still open (hanging or slow). */
  readonly inFlight: number;
  close(): Promise<void>;
}

/**
 * A real HTTP treasury on a loopback port that deduplicates by Idempotency-Key like a real payment
 * provider: the same key always yields the same reference and moves money once. Tests switch its
 * mode to produce the failures a network gateway meets in production.
 */
export async function startFakeTreasury(initial: TreasuryMode = { kind: 'succeed' }): Promise<FakeTreasury> {
  let mode: TreasuryMode = initial;
  // Counts down the `times` of the current fail / drop-response mode.
  let remaining = remainingOf(initial);
  const transfers = new Map<string, AcceptedTransfer>();
  const requests = new Map<string, number>();
  let requestCount = 0;
  let inFlight = 0;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) reply(res, 500, { error: { code: 'internal', message: String(error) } });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST' || req.url !== '/transfers') {
      reply(res, 404, { error: { code: 'not_found', message: `${req.method} ${req.url}` } });
      return;
    }
    const body = await readJson(req);
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string' || key === '' || !isTransferBody(body) || body.idempotencyKey !== key) {
      reply(res, 400, { error: { code: 'validation_failed', message: 'Idempotency-Key header and transfer body are required and must agree' } });
      return;
    }
    requestCount++;
    requests.set(key, (requests.get(key) ?? 0) + 1);

    const current = mode;
    switch (current.kind) {
      case 'fail':
        if (remaining > 0 && (current.only?.(key) ?? true)) {
          remaining--;
          reply(res, 500, { error: { code: 'treasury_unavailable', message: 'the treasury is having a bad day' } });
          return;
        }
        reply(res, 201, { reference: accept(key, body).reference });
        return;
      case 'hang':
        inFlight++;
        res.on('close', () => inFlight--);
        return;
      case 'drop-response':
        if (remaining > 0) {
          remaining--;
          accept(key, body);
          req.socket.destroy();
          return;
        }
        reply(res, 201, { reference: accept(key, body).reference });
        return;
      case 'slow': {
        const transfer = accept(key, body);
        inFlight++;
        res.on('close', () => inFlight--);
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (!res.destroyed) reply(res, 201, { reference: transfer.reference });
        }, current.delayMs);
        timers.add(timer);
        return;
      }
      case 'succeed':
        reply(res, 201, { reference: accept(key, body).reference });
        return;
    }
  }

  function accept(key: string, body: TransferBody): AcceptedTransfer {
    const existing = transfers.get(key);
    if (existing) return existing;
    const transfer = { idempotencyKey: key, reference: `tr_${randomUUID()}`, beneficiaryId: body.beneficiaryId, amount: body.amount, currency: body.currency };
    transfers.set(key, transfer);
    return transfer;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    setMode(next) {
      mode = next;
      remaining = remainingOf(next);
    },
    accepted: () => [...transfers.values()],
    requestsFor: (key) => requests.get(key) ?? 0,
    get requestCount() {
      return requestCount;
    },
    get inFlight() {
      return inFlight;
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function remainingOf(mode: TreasuryMode): number {
  if (mode.kind === 'fail') return mode.times;
  if (mode.kind === 'drop-response') return mode.times ?? Infinity;
  return 0;
}

interface TransferBody {
  idempotencyKey: string;
  beneficiaryId: string;
  amount: number;
  currency: string;
}

function isTransferBody(value: unknown): value is TransferBody {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.idempotencyKey === 'string' &&
    typeof v.beneficiaryId === 'string' &&
    Number.isSafeInteger(v.amount) &&
    (v.amount as number) > 0 &&
    typeof v.currency === 'string'
  );
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
