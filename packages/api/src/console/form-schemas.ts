import { Type } from '@sinclair/typebox';
import { Uuid } from '../schemas/fields.ts';

/** What the console's forms and links send, checked as strictly as the JSON API's bodies. */

export const ReasonBody = Type.Object(
  { reason: Type.String({ maxLength: 4096 }), confirm: Type.Optional(Type.Literal('yes')) },
  { additionalProperties: false },
);
export const PurchaseParams = Type.Object({ id: Uuid }, { additionalProperties: false });
export const NoticeQuery = Type.Object(
  { notice: Type.Optional(Type.String({ maxLength: 32 })) },
  { additionalProperties: false },
);
