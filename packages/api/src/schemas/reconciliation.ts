/** Reconciliation with the treasury: the window asked for and the drift report. */
import { Type } from '@sinclair/typebox';
import { Level, LevelPayoutStatusSchema, Nullable, ReferralPayoutStatusSchema, Timestamp, Uuid } from './fields.ts';

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
