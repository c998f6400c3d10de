/** A purchase's referral payout status, the failed list, the summary, and pause/resume of the treasury gate. */
import { Type } from '@sinclair/typebox';
import { MAX_FAILED_PAGE, MAX_PAUSE_REASON } from '@referrals/core';
import { Level, LevelPayoutStatusSchema, Nullable, ReferralPayoutStatusSchema, Timestamp, Uuid } from './fields.ts';

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
    stuckQueued: Type.Object(
      {
        count: Type.Integer({
          description: 'queued purchases with no live payout job and no activity for longer than afterSeconds',
        }),
        afterSeconds: Type.Integer({ description: 'STUCK_QUEUED_AFTER_SECONDS' }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
