import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TreasuryTransfer } from '@referrals/core';

/** What the treasury records per transfer: the shape `GET /transfers` answers with. */
export type AcceptedTransfer = TreasuryTransfer;

/** Largest page `GET /transfers` serves, as a real treasury caps its pages. */
export const FAKE_TREASURY_MAX_PAGE = 1000;

export type TransferToSeed = Omit<AcceptedTransfer, 'reference' | 'createdAt'> &
  Partial<Pick<AcceptedTransfer, 'reference' | 'createdAt'>>;

/**
 * The fake treasury's books: one transfer per idempotency key, in the order accepted, and their
 * read surface for reconciliation:
 * * `GET /transfers/{idempotencyKey}` — 200 with the transfer, or 404;
 * * `GET /transfers?since=<ISO-8601>&limit=<1..1000>&cursor=<c>` — `{ items, nextCursor }`, in the
 *   order the transfers were accepted, `nextCursor` null on the last page.
 */
export class TreasuryBooks {
  private readonly transfers = new Map<string, AcceptedTransfer>();
  // Acceptance order for listing; a forgotten key stays here and is skipped.
  private readonly order: string[] = [];
  private readonly listed = new Set<string>();
  readonly listRequests: { limit: number; cursor: string | null }[] = [];
  lookupCount = 0;

  get(key: string): AcceptedTransfer | undefined {
    return this.transfers.get(key);
  }

  all(): AcceptedTransfer[] {
    return [...this.transfers.values()];
  }

  /** Records the transfer once per key; a repeated key gets the first transfer back. */
  accept(transfer: Omit<AcceptedTransfer, 'reference' | 'createdAt'>): AcceptedTransfer {
    return (
      this.get(transfer.idempotencyKey) ??
      this.record({ ...transfer, reference: `tr_${randomUUID()}`, createdAt: new Date().toISOString() })
    );
  }

  seed(seeded: TransferToSeed[]): void {
    const createdAt = new Date().toISOString();
    for (const t of seeded) {
      if (!this.transfers.has(t.idempotencyKey))
        this.record({ ...t, reference: t.reference ?? `tr_${randomUUID()}`, createdAt: t.createdAt ?? createdAt });
    }
  }

  forget(key: string): void {
    this.transfers.delete(key);
  }

  alter(key: string, change: Partial<Pick<AcceptedTransfer, 'beneficiaryId' | 'amount' | 'currency'>>): void {
    const transfer = this.transfers.get(key);
    if (!transfer) throw new Error(`the fake treasury has no transfer ${key}`);
    this.transfers.set(key, { ...transfer, ...change });
  }

  /** Answers a `GET /transfers…` request. */
  read(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url!, 'http://treasury');
    if (url.pathname !== '/transfers') {
      this.lookupCount++;
      const transfer = this.transfers.get(decodeURIComponent(url.pathname.slice('/transfers/'.length)));
      if (transfer) reply(res, 200, transfer);
      else reply(res, 404, { error: { code: 'not_found', message: 'no transfer with this idempotency key' } });
      return;
    }
    const since = url.searchParams.get('since');
    const limit = Number(url.searchParams.get('limit') ?? '100');
    const cursor = url.searchParams.get('cursor');
    const start = cursor === null ? 0 : Number(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      since === null ||
      Number.isNaN(Date.parse(since)) ||
      !Number.isInteger(limit) ||
      limit < 1 ||
      limit > FAKE_TREASURY_MAX_PAGE ||
      !Number.isInteger(start) ||
      start < 0
    ) {
      reply(res, 400, {
        error: {
          code: 'validation_failed',
          message: `since (ISO-8601), limit (1..${FAKE_TREASURY_MAX_PAGE}) and cursor must be valid`,
        },
      });
      return;
    }
    this.listRequests.push({ limit, cursor });
    const sinceMs = Date.parse(since);
    const items: AcceptedTransfer[] = [];
    let index = start;
    for (; index < this.order.length && items.length < limit; index++) {
      const transfer = this.transfers.get(this.order[index]!);
      if (transfer && Date.parse(transfer.createdAt) >= sinceMs) items.push(transfer);
    }
    const nextCursor = index < this.order.length ? Buffer.from(String(index)).toString('base64url') : null;
    reply(res, 200, { items, nextCursor });
  }

  private record(transfer: AcceptedTransfer): AcceptedTransfer {
    this.transfers.set(transfer.idempotencyKey, transfer);
    if (!this.listed.has(transfer.idempotencyKey)) this.order.push(transfer.idempotencyKey);
    this.listed.add(transfer.idempotencyKey);
    return transfer;
  }
}

export function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
