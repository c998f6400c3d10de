import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';

/** Why a request was refused (4xx), noted by the error handler for the request's one log line. */
const refusals = new WeakMap<FastifyReply, { code: string; message: string }>();

export function noteRefusal(reply: FastifyReply, refusal: { code: string; message: string }): void {
  refusals.set(reply, refusal);
}

/**
 * One log line per request, written when it is answered: `POST /api/users 201 4 ms`, with the
 * refusal's code and message for a 4xx. Fastify's default is two lines (received, completed) plus
 * one per refusal. The request's logger carries its route's logLevel, so health probes and
 * scrapes, logged at `warn` and above only, stay quiet.
 */
export class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const ms = Math.round(reply.elapsedTime);
    const refusal = refusals.get(reply);
    const request_ = { method: request.method, url: request.url, statusCode: reply.statusCode, ms };
    const line = `${request.method} ${request.url} ${reply.statusCode} ${ms} ms${refusal ? ` ${refusal.code}: ${refusal.message}` : ''}`;
    if (error) reply.log.error({ request: request_, err: error }, line);
    else reply.log.info({ request: request_, ...(refusal ? { code: refusal.code } : {}) }, line);
  }
}
