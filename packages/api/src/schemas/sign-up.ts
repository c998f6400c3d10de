/** Users, referral codes and content: what the marketplace sets up before anyone buys. */
import { Type } from '@sinclair/typebox';
import { Amount, Currency, Handle, Nullable, RateBps, ReferralCodeValue, Timestamp, Title, Uuid } from './fields.ts';

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
