/**
 * Hostile input at every route: generated bodies, path parameters, query strings and headers, with
 * valid credentials so the requests reach validation and the handlers. No answer may be a 5xx, and a
 * refused request (4xx) writes nothing.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ReferralChain, seedReferralChain } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';
import { admin, rowCounts, service, testApp } from './support.ts';

const t = useTestDatabase();
let app: ReturnType<typeof testApp>;
let chain: ReferralChain;

interface RouteShape {
  method: 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH';
  url: string;
  bodyFields: string[];
  queryFields: string[];
  headerFields: string[];
}
const routes: RouteShape[] = [];

const propertiesOf = (schema: unknown): string[] =>
  Object.keys((schema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {});

beforeAll(async () => {
  app = testApp(t.db, t.url);
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs')) return;
    for (const method of [route.method].flat()) {
      if (method === 'HEAD' || method === 'OPTIONS') continue;
      routes.push({
        method: method as RouteShape['method'],
        url: route.url,
        bodyFields: propertiesOf(route.schema?.body),
        queryFields: propertiesOf(route.schema?.querystring),
        headerFields: propertiesOf(route.schema?.headers),
      });
    }
  });
  await app.ready();
  chain = await seedReferralChain(t.db);
});
afterAll(() => app.close());

const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Strings a careless edge lets through to a SQL cast or a text column. */
const hostileString = () =>
  fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc.constantFrom(
      '',
      '\u0000',
      'a\u0000b',
      '\uD800',
      'x\uDFFFy',
      '-'.repeat(36),
      '0',
      '123',
      '-1',
      '1e309',
      '99999999999999999999999',
      'NaN',
      '2026-02-31',
      '2026-02-31T25:61:61.000000Z',
      '0000-01-01T00:00:00.000Z',
      `urn:uuid:${randomUUID()}`,
      `{${randomUUID()}}`,
      randomUUID().toUpperCase(),
      randomUUID().replaceAll('-', ''),
      "' or 1=1 --",
      '%00',
      'x'.repeat(300),
      cursorOf(['0', randomUUID()]),
      cursorOf([123, randomUUID()]),
      cursorOf(['2026-11-28T00:00:00.000Z', '-'.repeat(36)]),
      cursorOf(['2026-02-31T00:00:00.000Z', randomUUID()]),
      cursorOf(['0000-01-01T00:00:00.000000Z', randomUUID()]),
      cursorOf(['2026-11-28T00:00:00.000Z', `{${randomUUID()}}`]),
    ),
  );

/** Values of any JSON type, some of them valid for the field they land in. */
const hostileValue = (): fc.Arbitrary<unknown> =>
  fc.oneof(
    hostileString(),
    fc
      .constantFrom(
        () => chain.buyer.id,
        () => chain.creator.id,
        () => chain.content.id,
        () => chain.directCode.code,
        () => 'EUR',
        () => 'A title',
      )
      .map((pick) => pick()),
    fc.uuid(),
    fc.integer(),
    fc.constantFrom(0, -1, 1.5, 2 ** 53, 1e300, Number.MAX_SAFE_INTEGER, 10_001),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.string(), { maxLength: 3 }),
    fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }),
  );

function fieldsFrom(names: string[], extra: string[] = []) {
  const keys = [...new Set([...names, ...extra])];
  if (keys.length === 0) return fc.constant({} as Record<string, unknown>);
  return fc.dictionary(fc.constantFrom(...keys), hostileValue(), { maxKeys: keys.length });
}

const pathValue = () =>
  fc.oneof(
    fc.uuid(),
    fc.constantFrom(
      chain.buyer.id,
      chain.content.id,
      randomUUID().toUpperCase(),
      '-'.repeat(36),
      '%00',
      '%ED%A0%80',
      `urn%3Auuid%3A${randomUUID()}`,
    ),
    hostileString().map(encodePathSegment),
  );

/** encodeURIComponent throws on a lone surrogate; such a path or query arrives as the bytes of one. */
function encodePathSegment(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return '%ED%A0%80';
  }
}

const credential = () => fc.constantFrom(admin, service);

describe('hostile input', () => {
  it('no route answers 5xx, and a refused request writes nothing', async () => {
    expect(routes.length).toBeGreaterThanOrEqual(10);
    const answered = new Map<string, Set<number>>();

    const requests = fc.constantFrom(...routes).chain((route) =>
      fc.record({
        route: fc.constant(route),
        path: pathValue(),
        rawBody: fc.oneof(
          { weight: 4, arbitrary: fc.constant(undefined) },
          { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
          { weight: 1, arbitrary: fc.string({ unit: 'binary' }) },
        ),
        body: fieldsFrom(route.bodyFields, ['extra']),
        query: fieldsFrom(route.queryFields),
        headers: fieldsFrom(route.headerFields, ['idempotency-key']).map((h) =>
          Object.fromEntries(Object.entries(h).map(([k, v]) => [k, headerText(v)])),
        ),
        credential: credential(),
        contentType: fc.constantFrom(
          'application/json',
          'application/json; charset=utf-8',
          'text/plain',
          'application/x-www-form-urlencoded',
          undefined,
        ),
      }),
    );

    await fc.assert(
      fc.asyncProperty(requests, fc.context(), async (input, ctx) => {
        const { route } = input;
        const url = route.url.replace(/:(\w+)/g, () => input.path) + queryString(input.query);
        const payload = route.method === 'GET' ? undefined : (input.rawBody ?? JSON.stringify(input.body));
        const headers: Record<string, string> = { ...input.credential, ...input.headers };
        if (payload !== undefined && input.contentType !== undefined) headers['content-type'] = input.contentType;
        ctx.log(`${route.method} ${url} ${JSON.stringify(headers)} ${payload}`);

        const before = await rowCounts(t.db);
        const response = await app.inject({
          method: route.method,
          url,
          headers,
          ...(payload === undefined ? {} : { payload }),
        });
        const statuses = answered.get(`${route.method} ${route.url}`) ?? new Set();
        answered.set(`${route.method} ${route.url}`, statuses.add(response.statusCode));
        expect(response.statusCode, response.body).toBeLessThan(500);
        if (response.statusCode >= 400) {
          // The console's pages answer in HTML; every API route in the JSON error shape.
          if (!route.url.startsWith('/console')) expect(response.json().error.code).toEqual(expect.any(String));
          expect(await rowCounts(t.db)).toEqual(before);
        }
      }),
      { numRuns: 400, seed: fcSeed() },
    );
    // Every route was reached, not just the first few.
    expect([...answered.keys()].sort()).toEqual([...new Set(routes.map((r) => `${r.method} ${r.url}`))].sort());
  });

  it.each([
    ['a NUL in referralCode', 'POST', '/api/users', { handle: 'nul_code', referralCode: 'AB\u0000C' }],
    [
      'a lone surrogate in a title',
      'POST',
      '/api/content',
      { creatorId: 'CREATOR', title: 'Sour\uD800dough', price: 100, currency: 'EUR' },
    ],
    ['a NUL in a search', 'GET', '/api/marketplace/referral-payouts?q=a%00b', undefined],
    [
      'a failed-list cursor ["0", uuid]',
      'GET',
      `/api/marketplace/referral-payouts/failed?cursor=${cursorOf(['0', randomUUID()])}`,
      undefined,
    ],
    [
      'a failed-list cursor [123, uuid]',
      'GET',
      `/api/marketplace/referral-payouts/failed?cursor=${cursorOf([123, randomUUID()])}`,
      undefined,
    ],
    [
      'a failed-list cursor with a 36-dash id',
      'GET',
      `/api/marketplace/referral-payouts/failed?cursor=${cursorOf(['2026-11-28T00:00:00.000Z', '-'.repeat(36)])}`,
      undefined,
    ],
    [
      'a failed-list cursor on February 31st',
      'GET',
      `/api/marketplace/referral-payouts/failed?cursor=${cursorOf(['2026-02-31T00:00:00.000Z', randomUUID()])}`,
      undefined,
    ],
    [
      'a search cursor at hour 25',
      'GET',
      `/api/marketplace/referral-payouts?cursor=${cursorOf(['2026-11-28T25:00:00.000000Z', randomUUID()])}`,
      undefined,
    ],
    ['a urn:uuid id', 'GET', `/api/marketplace/purchase/urn:uuid:${randomUUID()}`, undefined],
  ])('%s is a 400', async (_what, method, url, body) => {
    const before = await rowCounts(t.db);
    const payload =
      body === undefined ? undefined : JSON.parse(JSON.stringify(body).replace('CREATOR', chain.creator.id));
    const response = await app.inject({
      method: method as 'GET',
      url,
      headers: admin,
      ...(payload ? { payload } : {}),
    });
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json().error.code).toBe('validation_failed');
    expect(await rowCounts(t.db)).toEqual(before);
  });
});

/** Header values are Latin-1 text without line breaks; anything else never leaves a real client. */
function headerText(value: unknown): string {
  return String(typeof value === 'object' ? JSON.stringify(value) : value).replace(/[^\x20-\xff]/g, '?');
}

function queryString(query: Record<string, unknown>): string {
  const entries = Object.entries(query);
  if (entries.length === 0) return '';
  return `?${entries.map(([k, v]) => `${encodePathSegment(k)}=${encodePathSegment(typeof v === 'string' ? v : JSON.stringify(v))}`).join('&')}`;
}

/** FAST_CHECK_SEED replays a failing run; otherwise each run explores new inputs. */
function fcSeed(): number | undefined {
  const seed = process.env.FAST_CHECK_SEED;
  return seed === undefined ? undefined : Number(seed);
}
