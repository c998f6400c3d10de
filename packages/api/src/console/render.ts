import type { FastifyReply, FastifyRequest } from 'fastify';
import { SESSION_HOURS } from './session.ts';

/** Fixed texts shown after a redirect; the query names one, so nothing the client sends is echoed. */
const NOTICES = {
  'signed-out': 'Signed out.',
  retried: 'Payout processed: the status below is the result.',
  'written-off': 'Referral payouts written off.',
  paused: 'Payouts paused.',
  resumed: 'Payouts resumed.',
} as const;
export type Notice = keyof typeof NOTICES;

export function noticeOf(request: FastifyRequest): string | null {
  const key = (request.query as { notice?: string } | undefined)?.notice;
  return key !== undefined && Object.hasOwn(NOTICES, key) ? NOTICES[key as Notice] : null;
}

/** A console page in the layout, with the signed-in operator and the notice a redirect named. */
export function page(reply: FastifyReply, request: FastifyRequest, template: string, data: Record<string, unknown>) {
  return reply.viewAsync(template, {
    session: request.consoleSession,
    sessionHours: SESSION_HOURS,
    notice: noticeOf(request),
    ...data,
  });
}

/** The error page, with the reply's status code already set by the caller. */
export function renderError(reply: FastifyReply, request: FastifyRequest, message: string) {
  return reply.viewAsync('error.eta', {
    title: 'Refused',
    session: request.consoleSession,
    notice: null,
    message,
    status: reply.statusCode,
  });
}
