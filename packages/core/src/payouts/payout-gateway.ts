import http from 'node:http';
import https from 'node:https';
import type { PayoutGatewayKind } from '../config.ts';
import type { Tx } from '../db/database.ts';
import { type Movement, movementRows } from '../ledger/ledger.ts';
import { TransferError } from '../treasury/transfer-failure.ts';

export { TransferError };

export interface TransferRequest {
  /** `<purchase id>:<level>`: the same transfer always carries the same key. */
  idempotencyKey: string;
  beneficiaryId: string;
  amount: number;
  currency: string;
  purchaseId: string;
}

export interface TransferResult {
  reference: string;
}

/**
 * Where referral money goes. An in-database gateway transfers inside the transaction that records
 * the payout, so the effect is exactly once. An external gateway is called with no transaction open
 * and relies on the idempotency key for a retried transfer to take effect once.
 */
export type PayoutGateway =
  | {
      kind: 'in-database';
      name: PayoutGatewayKind;
      transfer(trx: Tx, requests: TransferRequest[]): Promise<TransferResult[]>;
    }
  | {
      kind: 'external';
      name: PayoutGatewayKind;
      timeoutMs: number;
      transfer(request: TransferRequest): Promise<TransferResult>;
    };

/**
 * Moves each amount from the platform treasury to the beneficiary's referral earnings: one balanced
 * movement per transfer, all written in one statement. A movement's transaction id is its reference.
 */
export const ledgerGateway: PayoutGateway = {
  kind: 'in-database',
  name: 'ledger',
  async transfer(trx, requests) {
    const movements = requests.map((request) => movementRows(referralMovement(request)));
    const rows = movements.flat();
    if (rows.length > 0) await trx.insertInto('ledger_entries').values(rows).execute();
    return movements.map((m) => ({ reference: m[0]!.transaction_id }));
  },
};

/** The ledger movement of a referral payout, whichever gateway moved the money. */
export function referralMovement(
  request: Pick<TransferRequest, 'amount' | 'currency' | 'purchaseId' | 'beneficiaryId'>,
): Movement {
  return {
    currency: request.currency,
    purchaseId: request.purchaseId,
    postings: [
      { account: 'platform_treasury', userId: null, amount: -request.amount },
      { account: 'referral_earnings', userId: request.beneficiaryId, amount: request.amount },
    ],
  };
}

/**
 * POSTs `{TREASURY_URL}/transfers` with an Idempotency-Key header. A 2xx with `{ reference }` is a
 * payment. Anything else is a TransferError carrying the treasury's status, which
 * `classifyTreasuryStatus` sorts: a refusal (4xx) is permanent; a timeout, a broken connection or
 * a 5xx/429 is transient and retried with the same key — the treasury deduplicates, so a transfer
 * whose response was lost is not paid twice.
 */
export function httpGateway(options: { treasuryUrl: string; timeoutMs: number }): PayoutGateway {
  const endpoint = new URL(
    'transfers',
    options.treasuryUrl.endsWith('/') ? options.treasuryUrl : `${options.treasuryUrl}/`,
  );
  const client = endpoint.protocol === 'https:' ? https : http;
  // Connections stay open between transfers; there are as many as transfers on the wire
  // (TREASURY_MAX_IN_FLIGHT bounds those).
  const agent = new client.Agent({ keepAlive: true });
  return {
    kind: 'external',
    name: 'http',
    timeoutMs: options.timeoutMs,
    async transfer(request) {
      const payload = JSON.stringify({
        idempotencyKey: request.idempotencyKey,
        beneficiaryId: request.beneficiaryId,
        amount: request.amount,
        currency: request.currency,
      });
      let response: { status: number; text: string };
      try {
        response = await post(client, agent, endpoint, request.idempotencyKey, payload, options.timeoutMs);
      } catch (error) {
        if (error instanceof TimedOut)
          throw new TransferError(`treasury did not answer within ${options.timeoutMs} ms`);
        throw new TransferError(`treasury unreachable: ${error instanceof Error ? error.message : String(error)}`);
      }
      const { status } = response;
      let body: unknown;
      try {
        body = JSON.parse(response.text);
      } catch {
        throw new TransferError(`treasury answered ${status} without a JSON body`, { status });
      }
      if (status < 200 || status > 299) {
        const detail =
          typeof body === 'object' && body !== null && 'error' in body ? `: ${JSON.stringify(body.error)}` : '';
        throw new TransferError(`treasury answered ${status}${detail}`.slice(0, 500), { status });
      }
      if (
        typeof body !== 'object' ||
        body === null ||
        !('reference' in body) ||
        typeof body.reference !== 'string' ||
        body.reference === ''
      ) {
        // A 2xx we cannot read: the transfer may have happened, so it is retried with its key.
        throw new TransferError(`treasury answered ${status} without a reference`, { kind: 'transient' });
      }
      return { reference: body.reference };
    },
  };
}

class TimedOut extends Error {}

/**
 * One POST with node's http client (fetch's streams and objects cost a worker paying at full speed
 * about a quarter of its CPU). The whole exchange, answer included, must end within `timeoutMs`.
 * A kept-alive connection the treasury closed just as this request went out is retried once on a
 * fresh one, as Node's documentation advises: the request never reached the treasury.
 */
function post(
  client: typeof http | typeof https,
  agent: http.Agent,
  endpoint: URL,
  idempotencyKey: string,
  payload: string,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  const once = (): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const req = client.request(
        endpoint,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
            'idempotency-key': idempotencyKey,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
          });
          res.on('error', (error) => {
            clearTimeout(timer);
            reject(error);
          });
        },
      );
      const timer = setTimeout(() => req.destroy(new TimedOut()), timeoutMs);
      req.on('error', (error) => {
        clearTimeout(timer);
        reject(Object.assign(error, { reusedSocket: req.reusedSocket }));
      });
      req.end(payload);
    });
  return once().catch((error: unknown) => {
    const stale =
      error instanceof Error &&
      (error as Error & { reusedSocket?: boolean }).reusedSocket === true &&
      (error as NodeJS.ErrnoException).code === 'ECONNRESET';
    if (stale) return once();
    throw error;
  });
}

export function gatewayFromConfig(config: {
  payoutGateway: 'ledger' | 'http';
  treasuryUrl: string | undefined;
  treasuryTimeoutMs: number;
}): PayoutGateway {
  if (config.payoutGateway === 'http') {
    return httpGateway({ treasuryUrl: config.treasuryUrl!, timeoutMs: config.treasuryTimeoutMs });
  }
  return ledgerGateway;
}
