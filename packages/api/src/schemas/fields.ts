/**
 * The HTTP contract as TypeBox schemas, one file per route family: one definition validates
 * requests, types the handlers and documents the API. Every object is closed
 * (`additionalProperties: false`) and every integer is bounded so that anything the schema accepts
 * also fits its column. This file holds the field types and answers every family shares.
 */
import { type TSchema, Type } from '@sinclair/typebox';
import { MAX_AMOUNT, UUID_PATTERN } from '@referrals/core';

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
export const Timestamp = Type.String({ format: 'date-time' });

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
export const Level = Type.Union([Type.Literal('direct'), Type.Literal('grand')]);
export const LevelPayoutStatusSchema = Type.Union([
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

export const StatusSchema = Type.Object({ status: Type.String() }, { additionalProperties: false });
