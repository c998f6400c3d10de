/** Purchases: create (with an optional Idempotency-Key), confirm and read. */
import { Type } from '@sinclair/typebox';
import { IdempotencyKey, Nullable, PaymentReference, ReferralPayoutStatusSchema, Timestamp, Uuid } from './fields.ts';

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
