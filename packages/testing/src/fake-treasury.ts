import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type AcceptedTransfer, reply, type TransferToSeed, TreasuryBooks } from './fake-treasury-books.ts';
import { answerIn, type Call, remainingOf, type TreasuryMode } from './fake-treasury-modes.ts';
import { readTransferRequest, type TransferRequestSeen } from './fake-treasury-request.ts';

export { type AcceptedTransfer, FAKE_TREASURY_MAX_PAGE, type TransferToSeed } from './fake-treasury-books.ts';
export type { TreasuryMode } from './fake-treasury-modes.ts';
export type { TransferRequestSeen } from './fake-treasury-request.ts';

/** One answer to `POST /transfers`, for a caller that narrates them (the demo). */
export interface TreasuryAnswer {
  transfer: TransferRequestSeen;
  status: number;
  /** The transfer's reference when it is paid, whether now or by an earlier request. */
  reference?: string;
  message?: string;
}

export interface FakeTreasuryOptions {
  /** 0 (default): any free loopback port. */
  port?: number;
  /** Operator endpoints served besides the treasury's own, keyed `METHOD /path`; each answers 200 with its result. */
  controls?: Record<string, () => unknown>;
  onAnswer?: (answer: TreasuryAnswer) => void;
}

export interface FakeTreasury {
  /** Base URL to put in TREASURY_URL. */
  readonly url: string;
  setMode(mode: TreasuryMode): void;
  /** Answers every later request this much later (on top of the mode), so concurrent callers really overlap. */
  setDelay(ms: number): void;
  /** Keeps every request unanswered (its caller in flight) until release(). */
  hold(): void;
  release(): void;
  heldCount(): number;
  /** Distinct transfers the treasury accepted: one per idempotency key, however often it was sent. */
  accepted(): AcceptedTransfer[];
  /** Every `POST /transfers` received, in arrival order, accepted or not. */
  readonly requests: readonly TransferRequestSeen[];
  /** Requests received for a key, accepted or not. */
  requestsFor(idempotencyKey: string): number;
  /** Requests received in total. */
  readonly requestCount: number;
  /** Requests answered with a reference, and requests answered with a failure status. */
  readonly counts: { readonly paid: number; readonly failed: number };
  /** Requests whose connection is still open (hanging, slow or held). */
  readonly inFlight: number;
  /** Records transfers as if they had been sent, without HTTP (for large reconciliation windows). */
  seed(transfers: TransferToSeed[]): void;
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
 * mode to produce the failures a network gateway meets in production; the bench and the demo use it
 * as the far side of PAYOUT_GATEWAY=http.
 */
export async function startFakeTreasury(
  initial: TreasuryMode = { kind: 'succeed' },
  options: FakeTreasuryOptions = {},
): Promise<FakeTreasury> {
  let mode: TreasuryMode = initial;
  const remaining = { value: remainingOf(initial) };
  let delayMs = 0;
  let held: (() => void)[] | undefined;
  const books = new TreasuryBooks();
  const requests: TransferRequestSeen[] = [];
  const requestsPerKey = new Map<string, number>();
  const counts = { paid: 0, failed: 0 };
  let inFlight = 0;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, run: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      run();
    }, ms);
    timers.add(timer);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) reply(res, 500, { error: { code: 'internal', message: String(error) } });
    });
  });
  // Keep-alive longer than the gateway's, so a busy caller's pooled connections are not cut.
  server.keepAliveTimeout = 30_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const control = options.controls?.[`${req.method} ${req.url}`];
    if (control) {
      reply(res, 200, control() ?? {});
      return;
    }
    if (req.method === 'GET' && req.url?.startsWith('/transfers')) {
      if (mode.kind === 'hang') {
        openUntilClosed(res);
        return;
      }
      books.read(req, res);
      return;
    }
    if (req.method !== 'POST' || req.url !== '/transfers') {
      reply(res, 404, { error: { code: 'not_found', message: `${req.method} ${req.url}` } });
      return;
    }
    const transfer = await readTransferRequest(req);
    if (transfer === null) {
      reply(res, 400, {
        error: {
          code: 'validation_failed',
          message: 'Idempotency-Key header and transfer body are required and must agree',
        },
      });
      return;
    }
    const key = transfer.idempotencyKey;
    requests.push(transfer);
    requestsPerKey.set(key, (requestsPerKey.get(key) ?? 0) + 1);
    const answer = () => answerIn(mode, call(transfer, res));
    const delayed = () => (delayMs > 0 ? later(delayMs, answer) : answer());
    if (held) {
      const done = openUntilClosed(res);
      held.push(() => {
        done();
        delayed();
      });
    } else delayed();
  }

  function call(transfer: TransferRequestSeen, res: ServerResponse): Call {
    const answered = (answer: TreasuryAnswer) => options.onAnswer?.(answer);
    const self: Call = {
      transfer,
      remaining,
      accept: () => books.accept(transfer),
      known: () => books.get(transfer.idempotencyKey),
      pay(status = 201) {
        const { reference } = self.accept();
        if (res.destroyed) return;
        counts.paid++;
        reply(res, status, { reference });
        answered({ transfer, status, reference });
      },
      refuse(status, code, message) {
        if (res.destroyed) return;
        counts.failed++;
        reply(res, status, { error: { code, message } });
        answered({ transfer, status, message });
      },
      answerRaw(status, body) {
        if (res.destroyed) return;
        counts.failed++;
        res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
        res.end(body);
        answered({ transfer, status, message: body });
      },
      leaveOpen: () => void openUntilClosed(res),
      dropConnection: () => res.socket?.destroy(),
      later(ms, run) {
        const done = openUntilClosed(res);
        later(ms, () => {
          done();
          run();
        });
      },
    };
    return self;
  }

  /** Counts the request in flight until its connection closes or `done` is called. */
  function openUntilClosed(res: ServerResponse): () => void {
    let open = true;
    inFlight++;
    const done = () => {
      if (open) inFlight--;
      open = false;
    };
    res.on('close', done);
    return done;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    setMode(next) {
      mode = next;
      remaining.value = remainingOf(next);
    },
    setDelay(ms) {
      delayMs = ms;
    },
    hold() {
      held ??= [];
    },
    release() {
      const waiting = held ?? [];
      held = undefined;
      for (const answer of waiting) answer();
    },
    heldCount: () => held?.length ?? 0,
    accepted: () => books.all(),
    requests,
    requestsFor: (key) => requestsPerKey.get(key) ?? 0,
    get requestCount() {
      return requests.length;
    },
    counts,
    get inFlight() {
      return inFlight;
    },
    seed: (seeded) => books.seed(seeded),
    forget: (key) => books.forget(key),
    alter: (key, change) => books.alter(key, change),
    listRequests: () => [...books.listRequests],
    get lookupCount() {
      return books.lookupCount;
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
