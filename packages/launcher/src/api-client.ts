/**
 * A small client for the public HTTP API, as a marketplace backend would call it. Used by `pnpm demo`
 * and the launcher's end-to-end test.
 */
export interface ApiUser {
  id: string;
  handle: string;
  referral: { code: string; directReferrerId: string; grandReferrerId: string | null } | null;
}
export interface ApiReferralCode {
  code: string;
  ownerId: string;
  directRateBps: number;
  grandRateBps: number;
}
export interface ApiContent {
  id: string;
  creatorId: string;
  title: string;
  price: number;
  currency: string;
}
export interface ApiPurchase {
  id: string;
  buyerId: string;
  contentId: string;
  price: number;
  currency: string;
  status: 'pending' | 'confirmed';
  referralPayoutStatus: 'queued' | 'completed' | 'failed' | 'not_applicable' | null;
  referralPayoutReason: string | null;
}
export interface ApiPayoutStatus {
  purchaseId: string;
  status: ApiPurchase['referralPayoutStatus'];
  reason: string | null;
  attempts: number;
  lastError: string | null;
  payouts: { level: 'direct' | 'grand'; beneficiaryId: string; amount: number; currency: string; status: string }[];
}

export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  readonly body: unknown;

  constructor(message: string, status: number, body: unknown) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/**
 * The credentials a marketplace backend holds: the service token for the marketplace routes (users,
 * content, purchases, confirm, purchase read); the admin token only for what an operator does
 * (referral codes, payout status).
 */
export interface ApiTokens {
  service: string;
  admin: string;
}

export function apiClient(baseUrl: string, tokens: ApiTokens) {
  async function call<T>(
    as: keyof ApiTokens,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    let response: Response;
    try {
      response = await fetch(new URL(path, baseUrl), {
        method,
        headers: {
          authorization: `Bearer ${tokens[as]}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
      throw new ApiError(`${method} ${path}: cannot reach the API at ${baseUrl} (${cause})`, 0, undefined);
    }
    const text = await response.text();
    const parsed: unknown = text === '' ? undefined : JSON.parse(text);
    if (!response.ok) {
      const detail = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiError(
        `${method} ${path}: ${response.status} ${detail?.code ?? ''} ${detail?.message ?? text}`.trim(),
        response.status,
        parsed,
      );
    }
    return parsed as T;
  }

  return {
    signUp: (handle: string, referralCode?: string) =>
      call<ApiUser>('service', 'POST', '/api/users', { handle, ...(referralCode ? { referralCode } : {}) }),
    createReferralCode: (ownerId: string, code?: string) =>
      call<ApiReferralCode>('admin', 'POST', '/api/referral-codes', { ownerId, ...(code ? { code } : {}) }),
    createContent: (creatorId: string, title: string, price: number, currency: string) =>
      call<ApiContent>('service', 'POST', '/api/content', { creatorId, title, price, currency }),
    createPurchase: (buyerId: string, contentId: string, idempotencyKey?: string) =>
      call<ApiPurchase>(
        'service',
        'POST',
        '/api/marketplace/purchases',
        { buyerId, contentId },
        idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
      ),
    confirmPurchase: (id: string, paymentReference: string) =>
      call<ApiPurchase>('service', 'POST', `/api/marketplace/purchase/${id}/confirm`, { paymentReference }),
    getPurchase: (id: string) => call<ApiPurchase>('service', 'GET', `/api/marketplace/purchase/${id}`),
    payoutStatus: (id: string) =>
      call<ApiPayoutStatus>('admin', 'GET', `/api/marketplace/purchase/${id}/referral-payout-status`),
  };
}

export type ApiClient = ReturnType<typeof apiClient>;
