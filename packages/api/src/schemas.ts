/**
 * The HTTP contract as TypeBox schemas: one definition validates requests, types the handlers and
 * documents the API. Every object is closed (`additionalProperties: false`) and every integer is
 * bounded so that anything the schema accepts also fits its column.
 */
import { type TSchema, Type } from '@sinclair/typebox';
import {
  MAX_AMOUNT,
  MAX_FAILED_PAGE,
  MAX_NOTE_LENGTH,
  MAX_PAUSE_REASON,
  MAX_SEARCH_PAGE,
  MAX_SEARCH_TEXT,
  UUID_PATTERN,
} from '@referrals/core';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Timestamp = Type.String({ format: 'date-time' });

// Ajv's uuid format also takes a `urn:uuid:` prefix, which Postgres's uuid cast refuses: the
// pattern keeps exactly the canonical form both accept.
export const Uuid = Type.String({ format: 'uuid', pattern: UUID_PATTERN.source });
export const Currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO-4217 code' });
export const Amount = Type.Integer({ minimum: 0, maximum: MAX_AMOUNT, description: 'integer minor units' });
export const RateBps = Type.Integer({ minimum: 0, maximum: 10_000, description: 'basis points' });
export const Handle = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' });
export const ReferralCodeValue = Type.String({ pattern: '^[A-Za-z0-9_-]{3,32}$' });
// Printable ASCII only: these strings end up in text columns and in logs.
export const PaymentReference = Type.String({ pattern: '^[\\x20-\\x7E]{1,255}$' });
export const IdempotencyKey = Type.String({
  pattern: '^[\\x20-\\x7E]{1,255}$',
  description: '1..255 printable ASCII characters',
});
// No control characters: Postgres text refuses NUL, and titles are shown in one line.
export const Title = Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001F\\u007F]+$' });

export const ReferralPayoutStatusSchema = Type.Union([
  Type.Literal('queued'),
  Type.Literal('completed'),
  Type.Literal('failed'),
  Type.Literal('not_applicable'),
]);
const Level = Type.Union([Type.Literal('direct'), Type.Literal('grand')]);
const LevelPayoutStatusSchema = Type.Union([
  Type.Literal('pending'),
  Type.Literal('paid'),
  Type.Literal('failed'),
  Type.Literal('written_off'),
]);

export const ErrorBody = Type.Object(
  { error: Type.Object({ code: Type.String(), message: Type.String() }, { additionalProperties: false }) },
  { additionalProperties: false },
);

export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const UserBody = Type.Object(
  { handle: Handle, referralCode: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) },
  { additionalProperties: false },
);
export const UserSchema = Type.Object(
  {
    id: Uuid,
    handle: Type.String(),
    referral: Nullable(
      Type.Object(
        { code: Type.String(), directReferrerId: Uuid, grandReferrerId: Nullable(Uuid) },
        { additionalProperties: false },
      ),
    ),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);

export const ReferralCodeBody = Type.Object(
  {
    ownerId: Uuid,
    code: Type.Optional(ReferralCodeValue),
    directRateBps: Type.Optional(RateBps),
    grandRateBps: Type.Optional(RateBps),
  },
  { additionalProperties: false },
);
export const ReferralCodeSchema = Type.Object(
  {
    code: Type.String(),
    ownerId: Uuid,
    directRateBps: Type.Integer(),
    grandRateBps: Type.Integer(),
    active: Type.Boolean(),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);

export const ContentBody = Type.Object(
  { creatorId: Uuid, title: Title, price: Amount, currency: Currency },
  { additionalProperties: false },
);
export const ContentSchema = Type.Object(
  {
    id: Uuid,
    creatorId: Uuid,
    title: Type.String(),
    price: Type.Integer(),
    currency: Type.String(),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);

export const CreatePurchaseBody = Type.Object({ buyerId: Uuid, contentId: Uuid }, { additionalProperties: false });
// Headers are an open set; only the ones named here are checked.
export const CreatePurchaseHeaders = Type.Object({ 'idempotency-key': Type.Optional(IdempotencyKey) });
export const ConfirmPurchaseBody = Type.Object({ paymentReference: PaymentReference }, { additionalProperties: false });
export const PurchaseSchema = Type.Object(
  {
    id: Uuid,
    buyerId: Uuid,
    contentId: Uuid,
    price: Type.Integer(),
    currency: Type.String(),
    status: Type.Union([Type.Literal('pending'), Type.Literal('confirmed')]),
    paymentReference: Nullable(Type.String()),
    referralPayoutStatus: Nullable(ReferralPayoutStatusSchema),
    referralPayoutReason: Nullable(Type.String()),
    createdAt: Timestamp,
    confirmedAt: Nullable(Timestamp),
  },
  { additionalProperties: false },
);

export const ReferralPayoutStatusView = Type.Object(
  {
    purchaseId: Uuid,
    status: Nullable(ReferralPayoutStatusSchema),
    reason: Nullable(Type.String()),
    attempts: Type.Integer(),
    lastError: Nullable(Type.String()),
    queuedAt: Nullable(Timestamp),
    completedAt: Nullable(Timestamp),
    payouts: Type.Array(
      Type.Object(
        {
          level: Level,
          beneficiaryId: Uuid,
          rateBps: Type.Integer(),
          amount: Type.Integer(),
          currency: Type.String(),
          status: LevelPayoutStatusSchema,
          reference: Nullable(Type.String()),
          paidAt: Nullable(Timestamp),
          error: Nullable(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
    events: Type.Array(
      Type.Object(
        {
          from: Nullable(ReferralPayoutStatusSchema),
          to: ReferralPayoutStatusSchema,
          actor: Type.String(),
          operator: Nullable(Type.String()),
          attempt: Type.Integer(),
          error: Nullable(Type.String()),
          note: Nullable(Type.String()),
          at: Timestamp,
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

// Query strings arrive as text and types are not coerced: digits are checked here, the range in
// the handler, so "abc", "1.5" and "-1" are all a 400 rather than a silent default.
export const FailedListQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$', description: `1..${MAX_FAILED_PAGE}, default 50` })),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'nextCursor of the previous page' }),
    ),
  },
  { additionalProperties: false },
);
const FailedItem = Type.Object(
  {
    purchaseId: Uuid,
    buyerId: Uuid,
    contentId: Uuid,
    price: Type.Integer(),
    currency: Type.String(),
    attempts: Type.Integer(),
    lastError: Nullable(Type.String()),
    failedAt: Timestamp,
  },
  { additionalProperties: false },
);
export const FailedListSchema = Type.Object(
  { items: Type.Array(FailedItem), nextCursor: Nullable(Type.String()), total: Type.Integer() },
  { additionalProperties: false },
);

export const TreasuryGateSchema = Type.Object(
  {
    state: Type.Union(
      [Type.Literal('closed'), Type.Literal('open'), Type.Literal('half_open'), Type.Literal('paused')],
      {
        description:
          'closed: transfers go through; open: the circuit breaker stopped them until a probe succeeds; half_open: that probe is in flight; paused: an operator stopped them',
      },
    ),
    since: Timestamp,
    reason: Nullable(Type.String()),
    by: Nullable(Type.String({ description: 'who paused payouts' })),
    lastError: Nullable(Type.String({ description: 'the last transient treasury failure' })),
  },
  { additionalProperties: false },
);

// No control characters: the reason is shown in one line in the summary and the logs.
export const PauseBody = Type.Object(
  {
    reason: Type.String({
      minLength: 1,
      maxLength: MAX_PAUSE_REASON,
      pattern: '^[^\\u0000-\\u001F\\u007F]*\\S[^\\u0000-\\u001F\\u007F]*$',
    }),
  },
  { additionalProperties: false },
);

export const SummarySchema = Type.Object(
  {
    counts: Type.Object(
      { queued: Type.Integer(), completed: Type.Integer(), failed: Type.Integer(), not_applicable: Type.Integer() },
      { additionalProperties: false },
    ),
    oldestQueuedAgeSeconds: Nullable(Type.Number()),
    outbox: Type.Object(
      { unpublished: Type.Integer(), oldestAgeSeconds: Nullable(Type.Number()) },
      { additionalProperties: false },
    ),
    failuresLastHour: Type.Integer(),
    failuresLastDay: Type.Integer(),
    recentFailures: Type.Array(FailedItem),
    treasury: TreasuryGateSchema,
  },
  { additionalProperties: false },
);

export const WriteOffBody = Type.Object(
  {
    reason: Type.String({
      minLength: 1,
      maxLength: MAX_NOTE_LENGTH,
      description: 'why the payouts are given up; kept in the history',
    }),
  },
  { additionalProperties: false },
);

const DateOrTime = (description: string) =>
  Type.String({
    pattern: '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,6})?)?(Z|[+-]\\d{2}:\\d{2}))?$',
    description: `${description}: a date (UTC midnight) or an ISO-8601 time with offset`,
  });

export const SearchQuery = Type.Object(
  {
    status: Type.Optional(ReferralPayoutStatusSchema),
    q: Type.Optional(
      Type.String({
        maxLength: MAX_SEARCH_TEXT,
        description: 'purchase, buyer or beneficiary id or handle, or text of an error',
      }),
    ),
    from: Type.Optional(DateOrTime('confirmed at or after')),
    to: Type.Optional(DateOrTime('confirmed before')),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$', description: `1..${MAX_SEARCH_PAGE}, default 50` })),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'nextCursor of the previous page' }),
    ),
  },
  { additionalProperties: false },
);
export const SearchPageSchema = Type.Object(
  {
    items: Type.Array(
      Type.Object(
        {
          purchaseId: Uuid,
          buyerId: Uuid,
          buyerHandle: Type.String(),
          contentId: Uuid,
          price: Type.Integer(),
          currency: Type.String(),
          status: ReferralPayoutStatusSchema,
          reason: Nullable(Type.String()),
          attempts: Type.Integer(),
          lastError: Nullable(Type.String()),
          confirmedAt: Timestamp,
        },
        { additionalProperties: false },
      ),
    ),
    nextCursor: Nullable(Type.String()),
  },
  { additionalProperties: false },
);

export const BulkRetryQuery = Type.Object(
  {
    concurrency: Type.Optional(
      Type.String({ pattern: '^[0-9]{1,3}$', description: 'purchases retried at once, 1..32, default 4' }),
    ),
  },
  { additionalProperties: false },
);
export const BulkRetryReportSchema = Type.Object(
  {
    total: Type.Integer(),
    completed: Type.Integer(),
    stillFailed: Type.Integer(),
    notApplicable: Type.Integer(),
    notAttempted: Type.Integer(),
    results: Type.Array(
      Type.Object(
        {
          purchaseId: Uuid,
          status: Type.Union([
            Type.Literal('completed'),
            Type.Literal('not_applicable'),
            Type.Literal('failed'),
            Type.Literal('retryable'),
          ]),
          error: Nullable(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const StatusSchema = Type.Object({ status: Type.String() }, { additionalProperties: false });

// A date or an ISO-8601 time; the exact rule (and "not in the future") is core's parseReconcileSince.
export const ReconciliationQuery = Type.Object(
  {
    since: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 40,
        description: 'start of the window: 2026-11-20 or 2026-11-20T08:00:00Z (default 7 days ago)',
      }),
    ),
  },
  { additionalProperties: false },
);
// The fix takes the same window, in its body.
export const ReconciliationFixBody = ReconciliationQuery;
const DriftKindSchema = Type.Union([
  Type.Literal('unrecorded_transfer'),
  Type.Literal('missing_at_treasury'),
  Type.Literal('mismatch'),
]);
const RecordedLevelSchema = Type.Object(
  {
    status: LevelPayoutStatusSchema,
    beneficiaryId: Uuid,
    amount: Type.Integer(),
    currency: Type.String(),
    reference: Nullable(Type.String()),
    paidAt: Nullable(Timestamp),
  },
  { additionalProperties: false },
);
const TreasuryTransferSchema = Type.Object(
  {
    reference: Type.String(),
    beneficiaryId: Type.String(),
    amount: Type.Integer(),
    currency: Type.String(),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);
export const ReconciliationReportSchema = Type.Object(
  {
    since: Timestamp,
    checkedAt: Timestamp,
    gateway: Type.String(),
    treasuryTransfers: Type.Integer(),
    recordedLevels: Type.Integer(),
    driftCounts: Type.Object(
      { unrecorded_transfer: Type.Integer(), missing_at_treasury: Type.Integer(), mismatch: Type.Integer() },
      { additionalProperties: false },
    ),
    drift: Type.Array(
      Type.Object(
        {
          kind: DriftKindSchema,
          purchaseId: Uuid,
          level: Level,
          idempotencyKey: Type.String(),
          ours: Nullable(RecordedLevelSchema),
          treasury: Nullable(TreasuryTransferSchema),
          fixable: Type.Boolean(),
        },
        { additionalProperties: false },
      ),
    ),
    driftTruncated: Type.Boolean(),
    fixed: Type.Array(
      Type.Object(
        {
          purchaseId: Uuid,
          level: Level,
          idempotencyKey: Type.String(),
          reference: Type.String(),
          amount: Type.Integer(),
          currency: Type.String(),
          purchaseStatus: ReferralPayoutStatusSchema,
        },
        { additionalProperties: false },
      ),
    ),
    fixedCount: Type.Integer(),
    note: Nullable(Type.String()),
  },
  { additionalProperties: false },
);
