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
  return {
    kind: 'external',
    name: 'http',
    timeoutMs: options.timeoutMs,
    async transfer(request) {
      let response: Response;
      try {
        response = await fetch(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': request.idempotencyKey },
          body: JSON.stringify({
            idempotencyKey: request.idempotencyKey,
            beneficiaryId: request.beneficiaryId,
            amount: request.amount,
            currency: request.currency,
          }),
          signal: AbortSignal.timeout(options.timeoutMs),
        });
      } catch (error) {
        const name = error instanceof Error ? error.name : '';
        if (name === 'TimeoutError' || name === 'AbortError') {
          throw new TransferError(`treasury did not answer within ${options.timeoutMs} ms`);
        }
        const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
        throw new TransferError(`treasury unreachable: ${cause}`);
      }
      let body: unknown;
      try {
        body = await response.json();
      } catch {
        throw new TransferError(`treasury answered ${response.status} without a JSON body`, {
          status: response.status,
        });
      }
      if (!response.ok) {
        const detail =
          typeof body === 'object' && body !== null && 'error' in body ? `: ${JSON.stringify(body.error)}` : '';
        throw new TransferError(`treasury answered ${response.status}${detail}`.slice(0, 500), {
          status: response.status,
        });
      }
      if (
        typeof body !== 'object' ||
        body === null ||
        !('reference' in body) ||
        typeof body.reference !== 'string' ||
        body.reference === ''
      ) {
        // A 2xx we cannot read: the transfer may have happened, so it is retried with its key.
        throw new TransferError(`treasury answered ${response.status} without a reference`, { kind: 'transient' });
      }
      return { reference: body.reference };
    },
  };
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
