/** The fake treasury's reading of `POST /transfers`: the Idempotency-Key header and a transfer body that agree. */

import type { IncomingMessage } from 'node:http';

/** A transfer as the treasury received it in `POST /transfers`. */
export interface TransferRequestSeen {
  idempotencyKey: string;
  beneficiaryId: string;
  amount: number;
  currency: string;
}

/** The transfer a request asks for, or null when its header and body are missing, malformed or disagree. */
export async function readTransferRequest(req: IncomingMessage): Promise<TransferRequestSeen | null> {
  const body = await readJson(req);
  const key = req.headers['idempotency-key'];
  if (typeof key !== 'string' || key === '' || !isTransferBody(body) || body.idempotencyKey !== key) return null;
  return { idempotencyKey: key, beneficiaryId: body.beneficiaryId, amount: body.amount, currency: body.currency };
}

function isTransferBody(value: unknown): value is TransferRequestSeen {
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
