import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TreasuryTransfer } from '@referrals/core';

/**
 * How the fake treasury answers `POST /transfers`:
 * * `succeed` — records the transfer and answers 201 `{ reference }`;
 * * `fail` — answers 500 to the next `times` requests without recording anything, then succeeds
 *   (`times: Infinity` fails until the mode changes); `only` limits the failures to some keys;
 * * `hang` — never answers (the caller's timeout fires); nothing is recorded;
 * * `drop-response` — records the transfer, then destroys the socket before answering, for the
 *   next `times` requests (default: until the mode changes);
 * * `slow` — records the transfer on arrival and answers after `delayMs`.
 *
 * The reconciliation surface answers in every mode except `hang`, where reads hang too:
 * * `GET /transfers/{idempotencyKey}` — 200 with the transfer, or 404;
 * * `GET /transfers?since=<ISO-8601>&limit=<1..1000>&cursor=<c>` — `{ items, nextCursor }`, in the
 *   order the transfers were accepted, `nextCursor` null on the last page.
 */
export type TreasuryMode =
  | { kind: 'succeed' }
  | { kind: 'fail'; times: number; only?: (idempotencyKey: string) => boolean }
  | { kind: 'hang' }
  | { kind: 'drop-response'; times?: number }
  | { kind: 'slow'; delayMs: number };

/** What the treasury records per transfer: the shape `GET /transfers` answers with. */
export type AcceptedTransfer = TreasuryTransfer;

/** Largest page `GET /transfers` serves, as a real treasury caps its pages. */
export const FAKE_TREASURY_MAX_PAGE = 1000;

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
  /** Records transfers as if they had been sent, without HTTP (for large reconciliation windows). */
  seed(transfers: (Omit<AcceptedTransfer, 'reference' | 'createdAt'> & Partial<Pick<AcceptedTransfer, 'reference' | 'createdAt'>>)[]): void;
  /** Drops a transfer from the treasury's books: reconciliation then finds it missing. */
  forget(idempotencyKey: string): void;
  /** Rewrites a recorded transfer, e.g. its amount, as a treasury-side error would. */
  alter(idempotencyKey: string, change: Partial<Pick<AcceptedTransfer, 'beneficiaryId' | 'amount' | 'currency'>>): void;
  /** `GET /transfers` requests received, with the `limit` each asked for. */
  listRequests(): { limit: number; cursor: string | null }[];
  /** `GET /transfers/{key}` requests received. */
  readonly lookupCount: number;
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
  // Acceptance order for listing; a forgotten key stays here and is skipped.
  const order: string[] = [];
  const listed = new Set<string>();
  const list = (key: string) => {
    if (!listed.has(key)) order.push(key);
    listed.add(key);
  };
  const listRequests: { limit: number; cursor: string | null }[] = [];
  let lookupCount = 0;
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
    if (req.method === 'GET' && req.url?.startsWith('/transfers')) {
      if (mode.kind === 'hang') {
        inFlight++;
        res.on('close', () => inFlight--);
        return;
      }
      read(req, res);
      return;
    }
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
    const transfer = {
      idempotencyKey: key,
      reference: `tr_${randomUUID()}`,
      beneficiaryId: body.beneficiaryId,
      amount: body.amount,
      currency: body.currency,
      createdAt: new Date().toISOString(),
    };
    transfers.set(key, transfer);
    list(key);
    return transfer;
  }

  function read(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url!, 'http://treasury');
    if (url.pathname !== '/transfers') {
      lookupCount++;
      const transfer = transfers.get(decodeURIComponent(url.pathname.slice('/transfers/'.length)));
      if (transfer) reply(res, 200, transfer);
      else reply(res, 404, { error: { code: 'not_found', message: 'no transfer with this idempotency key' } });
      return;
    }
    const since = url.searchParams.get('since');
    const limitText = url.searchParams.get('limit') ?? '100';
    const cursor = url.searchParams.get('cursor');
    const limit = Number(limitText);
    const start = cursor === null ? 0 : Number(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (since === null || Number.isNaN(Date.parse(since)) || !Number.isInteger(limit) || limit < 1 || limit > FAKE_TREASURY_MAX_PAGE || !Number.isInteger(start) || start < 0) {
      reply(res, 400, { error: { code: 'validation_failed', message: `since (ISO-8601), limit (1..${FAKE_TREASURY_MAX_PAGE}) and cursor must be valid` } });
      return;
    }
    listRequests.push({ limit, cursor });
    const sinceMs = Date.parse(since);
    const items: AcceptedTransfer[] = [];
    let index = start;
    for (; index < order.length && items.length < limit; index++) {
      const transfer = transfers.get(order[index]!);
      if (transfer && Date.parse(transfer.createdAt) >= sinceMs) items.push(transfer);
    }
    const nextCursor = index < order.length ? Buffer.from(String(index)).toString('base64url') : null;
    reply(res, 200, { items, nextCursor });
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
    seed(seeded) {
      const createdAt = new Date().toISOString();
      for (const t of seeded) {
        if (transfers.has(t.idempotencyKey)) continue;
        transfers.set(t.idempotencyKey, { ...t, reference: t.reference ?? `tr_${randomUUID()}`, createdAt: t.createdAt ?? createdAt });
        list(t.idempotencyKey);
      }
    },
    forget(key) {
      transfers.delete(key);
    },
    alter(key, change) {
      const transfer = transfers.get(key);
      if (!transfer) throw new Error(`the fake treasury has no transfer ${key}`);
      transfers.set(key, { ...transfer, ...change });
    },
    listRequests: () => [...listRequests],
    get lookupCount() {
      return lookupCount;
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
