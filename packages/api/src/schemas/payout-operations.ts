/** Operator repairs over many purchases or one: write-off, search and bulk retry. */
import { Type } from '@sinclair/typebox';
import { MAX_NOTE_LENGTH, MAX_SEARCH_PAGE, MAX_SEARCH_TEXT } from '@referrals/core';
import { Nullable, ReferralPayoutStatusSchema, Timestamp, Uuid } from './fields.ts';

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
