import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '@referrals/core';
import { useTestDatabase } from '@referrals/testing/vitest';
import { buildApp } from '../src/app.ts';
import { SERVICE_TOKEN, service } from './support.ts';

const t = useTestDatabase();

describe('request logging', () => {
  it('writes one line per answered request, and none for health probes and scrapes', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n'))
          if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const app = buildApp({
      config: loadConfig({ DATABASE_URL: t.url, SERVICE_API_TOKEN: SERVICE_TOKEN }),
      db: t.db,
      logger: pino({ level: 'info' }, sink),
    });
    try {
      await app.inject({ method: 'GET', url: '/healthz' });
      await app.inject({ method: 'GET', url: '/metrics' });
      const created = await app.inject({
        method: 'POST',
        url: '/api/users',
        headers: service,
        payload: { handle: 'logged_user' },
      });
      expect(created.statusCode).toBe(201);
      await app.inject({ method: 'GET', url: '/api/marketplace/purchase/not-a-uuid', headers: service });
    } finally {
      await app.close();
    }
    // Nothing but the two request lines: no "incoming request", "request completed" or "request refused".
    expect(lines.map((line) => line.msg)).toEqual([
      expect.stringMatching(/^POST \/api\/users 201 \d+ ms$/),
      expect.stringMatching(
        /^GET \/api\/marketplace\/purchase\/not-a-uuid 400 \d+ ms validation_failed: params\/id must match /,
      ),
    ]);
    expect(lines[1]).toMatchObject({ code: 'validation_failed', request: { method: 'GET', statusCode: 400 } });
  });
});
