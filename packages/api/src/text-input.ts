import type { FastifyRequest } from 'fastify';
import { DomainError } from '@referrals/core';

/**
 * Why `text` cannot be taken as input, if it cannot: Postgres text refuses NUL (SQLSTATE 22021, a
 * 500 had it reached the database), and a lone UTF-16 surrogate has no UTF-8 form, so the driver
 * would silently store U+FFFD in its place.
 */
// Code units, not code points (no `u` flag): a high surrogate without its low one, or the reverse.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function unstorable(text: string): string | undefined {
  if (text.includes('\u0000')) return 'contains a NUL character';
  if (LONE_SURROGATE.test(text)) return 'contains a lone UTF-16 surrogate (not valid Unicode)';
  return undefined;
}

function findUnstorable(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') {
    const why = unstorable(value);
    return why && `${path} ${why}`;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const keyWhy = unstorable(key);
    if (keyWhy) return `a field name in ${path} ${keyWhy}`;
    const why = findUnstorable(item, `${path}/${key}`);
    if (why) return why;
  }
  return undefined;
}

/**
 * A preValidation hook for every route: no string anywhere in the body, the path parameters, the
 * query string or the headers may hold what Postgres text cannot store. Checked here, once, so no
 * route's schema can forget it.
 */
export async function refuseUnstorableText(request: FastifyRequest): Promise<void> {
  const why =
    findUnstorable(request.params, 'params') ??
    findUnstorable(request.query, 'querystring') ??
    findUnstorable(request.headers, 'headers') ??
    findUnstorable(request.body, 'body');
  if (why) throw new DomainError('validation_failed', why);
}
