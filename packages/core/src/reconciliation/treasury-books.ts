import { setTimeout as sleep } from 'node:timers/promises';
import { DomainError } from '../errors.ts';
import { classifyTreasuryStatus } from '../treasury/transfer-failure.ts';

/** A transfer as the treasury's books record it. */
export interface TreasuryTransfer {
  idempotencyKey: string;
  reference: string;
  beneficiaryId: string;
  amount: number;
  currency: string;
  createdAt: string;
}

export interface TransferPage {
  items: TreasuryTransfer[];
  nextCursor: string | null;
}

/** Read access to what the treasury did: one page at a time, or one transfer by its key. */
export interface TreasuryBooks {
  listTransfers(query: { since: Date; limit: number; cursor: string | null }): Promise<TransferPage>;
  /** null when the treasury has no transfer with this key. */
  getTransfer(idempotencyKey: string): Promise<TreasuryTransfer | null>;
}

const ATTEMPTS = 3;
const BACKOFF_MS = 200;

class TransientReadError extends Error {
  override name = 'TransientReadError';
}

/**
 * `GET {TREASURY_URL}/transfers` and `/transfers/{key}`, each call bounded by `timeoutMs`. A timeout,
 * a broken connection or a status that transfers classify as transient is retried twice with
 * backoff, because one blip must not end a run over a million transfers; what still fails is
 * `treasury_unavailable`. An answer that is not the contract's shape is refused rather than compared.
 */
export function httpTreasuryBooks(options: { treasuryUrl: string; timeoutMs: number }): TreasuryBooks {
  const base = options.treasuryUrl.endsWith('/') ? options.treasuryUrl : `${options.treasuryUrl}/`;

  async function getJson(url: URL, allowNotFound: boolean): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await getOnce(url, allowNotFound, options.timeoutMs);
      } catch (error) {
        if (!(error instanceof TransientReadError)) throw error;
        if (attempt >= ATTEMPTS)
          throw new DomainError('treasury_unavailable', `${error.message} (GET ${url.pathname}, ${ATTEMPTS} attempts)`);
        await sleep(BACKOFF_MS * 2 ** (attempt - 1));
      }
    }
  }

  return {
    async listTransfers({ since, limit, cursor }) {
      const url = new URL('transfers', base);
      url.searchParams.set('since', since.toISOString());
      url.searchParams.set('limit', String(limit));
      if (cursor !== null) url.searchParams.set('cursor', cursor);
      const body = await getJson(url, false);
      if (typeof body !== 'object' || body === null || !Array.isArray((body as TransferPage).items)) {
        throw unexpected('a transfer page without items');
      }
      const { items, nextCursor } = body as { items: unknown[]; nextCursor: unknown };
      if (nextCursor !== null && (typeof nextCursor !== 'string' || nextCursor === ''))
        throw unexpected('a transfer page with an invalid nextCursor');
      return { items: items.map(transfer), nextCursor };
    },
    async getTransfer(idempotencyKey) {
      const body = await getJson(new URL(`transfers/${encodeURIComponent(idempotencyKey)}`, base), true);
      return body === null ? null : transfer(body);
    },
  };
}

async function getOnce(url: URL, allowNotFound: boolean, timeoutMs: number): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const name = error instanceof Error ? error.name : '';
    if (name === 'TimeoutError' || name === 'AbortError')
      throw new TransientReadError(`treasury did not answer within ${timeoutMs} ms`);
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
    throw new TransientReadError(`treasury unreachable: ${cause}`);
  }
  if (response.status === 404 && allowNotFound) {
    await response.body?.cancel();
    return null;
  }
  if (!response.ok && classifyTreasuryStatus(response.status) === 'transient') {
    await response.body?.cancel();
    throw new TransientReadError(`treasury answered ${response.status}`);
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    throw unexpected(`${response.status} without a JSON body`);
  }
  if (!response.ok) {
    const detail =
      typeof body === 'object' && body !== null && 'error' in body ? `: ${JSON.stringify(body.error)}` : '';
    throw new DomainError('treasury_unavailable', `treasury answered ${response.status}${detail}`.slice(0, 500));
  }
  return body;
}

const unexpected = (what: string) => new DomainError('treasury_unavailable', `treasury answered ${what}`);

function transfer(value: unknown): TreasuryTransfer {
  const v = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const text = (name: string) => typeof v[name] === 'string' && v[name] !== '';
  if (
    !text('idempotencyKey') ||
    !text('reference') ||
    !text('beneficiaryId') ||
    !text('currency') ||
    !text('createdAt') ||
    Number.isNaN(Date.parse(v.createdAt as string)) ||
    !Number.isSafeInteger(v.amount)
  ) {
    throw unexpected(
      `a transfer that is not { idempotencyKey, reference, beneficiaryId, amount, currency, createdAt }: ${JSON.stringify(value).slice(0, 200)}`,
    );
  }
  return {
    idempotencyKey: v.idempotencyKey as string,
    reference: v.reference as string,
    beneficiaryId: v.beneficiaryId as string,
    amount: v.amount as number,
    currency: v.currency as string,
    createdAt: new Date(v.createdAt as string).toISOString(),
  };
}

/** The treasury's books for the configured gateway; null for the ledger gateway, which has none. */
export function treasuryBooksFromConfig(config: {
  payoutGateway: 'ledger' | 'http';
  treasuryUrl: string | undefined;
  treasuryTimeoutMs: number;
}): TreasuryBooks | null {
  if (config.payoutGateway !== 'http') return null;
  return httpTreasuryBooks({ treasuryUrl: config.treasuryUrl!, timeoutMs: config.treasuryTimeoutMs });
}
