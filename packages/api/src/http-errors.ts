/**
 * The one place that turns failures into HTTP answers `{ error: { code, message } }`. Domain error
 * codes map to statuses here and nowhere else; 4xx messages describe the request, 5xx messages are
 * hidden from the client and logged with the request id instead.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, type ErrorCode, isDatabaseUnavailable, isUniqueViolation } from '@referrals/core';
import { noteRefusal } from './request-log.ts';

const STATUS_BY_CODE: Record<ErrorCode, number> = {
  validation_failed: 400,
  unauthorized: 401,
  not_found: 404,
  conflict: 409,
  purchase_not_confirmed: 409,
  unknown_referral_code: 422,
  idempotency_key_reused: 422,
  // Reconciliation could not read the treasury's books: the upstream failed, not this request.
  treasury_unavailable: 502,
  // The purchase cannot be paid now because of the gate's state, which the request cannot change.
  payouts_paused: 409,
  treasury_circuit_open: 409,
  // The level belongs to the other payout gateway: a deployment fault no retry of the request fixes.
  gateway_mismatch: 409,
};

export interface ErrorAnswer {
  status: number;
  code: string;
  message: string;
  /** Seconds the client should wait before retrying (the Retry-After header). */
  retryAfterSeconds?: number;
}

/**
 * What a client is told to wait while the database is unreachable. A restart takes about two
 * seconds; a longer outage is answered the same way on every retry, so the figure only needs to
 * keep clients from hammering.
 */
export const DATABASE_RETRY_AFTER_SECONDS = 2;

export const DATABASE_UNAVAILABLE: ErrorAnswer = {
  status: 503,
  code: 'service_unavailable',
  message: 'the database is unavailable; retry later',
  retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS,
};

function fastifyClientError(error: FastifyError): ErrorAnswer | undefined {
  if (error.validation) {
    const where = error.validationContext ?? 'request';
    const details = error.validation
      .map((v) => {
        // Ajv does not name the offending field in this message; the client needs it.
        const extra = v.keyword === 'additionalProperties' ? ` ("${String(v.params?.additionalProperty)}")` : '';
        return `${where}${v.instancePath || ''} ${v.message ?? 'is invalid'}${extra}`.trim();
      })
      .join('; ');
    return { status: 400, code: 'validation_failed', message: details || error.message };
  }
  const status = error.statusCode;
  if (status === undefined || status < 400 || status >= 500) return undefined;
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status, code: 'invalid_json', message: error.message };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status, code: 'payload_too_large', message: error.message };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status, code: 'unsupported_media_type', message: error.message };
  }
  // The JSON parser's own SyntaxError carries a 400 but no Fastify code.
  if (error instanceof SyntaxError)
    return { status: 400, code: 'invalid_json', message: `body is not valid JSON: ${error.message}` };
  return { status, code: status === 404 ? 'not_found' : 'bad_request', message: error.message };
}

export function toErrorAnswer(error: unknown): ErrorAnswer {
  if (error instanceof DomainError) {
    return { status: STATUS_BY_CODE[error.code], code: error.code, message: error.message };
  }
  // An outage, a restart or a killed connection: the request was fine and may be retried as is.
  if (isDatabaseUnavailable(error)) return DATABASE_UNAVAILABLE;
  // A race the domain code did not anticipate is still a conflict, not a crash.
  if (isUniqueViolation(error)) {
    return { status: 409, code: 'conflict', message: 'the request conflicts with existing data' };
  }
  if (typeof error === 'object' && error !== null && 'statusCode' in error) {
    const answer = fastifyClientError(error as FastifyError);
    if (answer) return answer;
  }
  return { status: 500, code: 'internal_error', message: 'internal server error' };
}

export function errorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply) {
  const answer = toErrorAnswer(error);
  if (answer === DATABASE_UNAVAILABLE) {
    request.log.warn({ err: error }, 'database unavailable');
  } else if (answer.status >= 500) {
    request.log.error({ err: error }, 'request failed');
  } else {
    noteRefusal(reply, answer);
  }
  if (answer.retryAfterSeconds !== undefined) reply.header('retry-after', String(answer.retryAfterSeconds));
  // A domain error's message is written for the caller, also when an upstream failed (502).
  const shown = answer === DATABASE_UNAVAILABLE || error instanceof DomainError;
  const message = answer.status >= 500 && !shown ? `internal server error (request ${request.id})` : answer.message;
  return reply.code(answer.status).send({ error: { code: answer.code, message } });
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply) {
  return reply
    .code(404)
    .send({ error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } });
}
