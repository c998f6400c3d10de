import { ErrorBody } from '../schemas/fields.ts';

/** Error answers every route may give; they also document the error shape in OpenAPI. */
export const ClientErrors = { '4xx': ErrorBody, '5xx': ErrorBody } as const;
