import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createDatabase, ensureDeploymentGateway, migrate } from '@referrals/core';
import { childProcessEnv, startThrowawayPostgres, waitFor } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();
const SERVER = fileURLToPath(new URL('../src/server.ts', import.meta.url));

function startServer(env: Record<string, string>) {
  const child = spawn(process.execPath, [SERVER], {
    env: childProcessEnv({ PATH: process.env.PATH ?? '', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return { child, stdout: () => stdout, stderr: () => stderr };
}

describe('server entry', () => {
  it('listens, logs its URL, serves, and exits 0 on SIGTERM', async () => {
    const server = startServer({ DATABASE_URL: t.url, PORT: '0', LOG_LEVEL: 'info' });
    try {
      const url = await waitFor(() => /"url":"(http:[^"]+)"/.exec(server.stdout())?.[1], {
        what: 'the listening log line',
        timeoutMs: 20_000,
      });
      expect(server.stdout().match(/listening/g)).toEqual(['listening']);
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(200);
      const exited = once(server.child, 'exit');
      server.child.kill('SIGTERM');
      const [code] = await exited;
      expect(code).toBe(0);
      expect(server.stdout()).toContain('"msg":"stopped"');
    } finally {
      if (server.child.exitCode === null) server.child.kill('SIGKILL');
    }
  });

  it('refuses to start with invalid configuration, naming the variable', async () => {
    const server = startServer({ DATABASE_URL: t.url, PORT: 'eighty' });
    const [code] = await once(server.child, 'exit');
    expect(code).toBe(1);
    expect(server.stderr()).toContain('PORT must be an integer');
  });

  it('refuses to start, exit 2, when its PAYOUT_GATEWAY is not the one recorded for the database', async () => {
    await ensureDeploymentGateway(t.db, 'ledger', 'worker');
    const server = startServer({
      DATABASE_URL: t.url,
      PORT: '0',
      PAYOUT_GATEWAY: 'http',
      TREASURY_URL: 'http://127.0.0.1:9/treasury',
    });
    const [code] = await once(server.child, 'exit');
    expect(code).toBe(2);
    expect(server.stderr()).toMatch(
      /^api: PAYOUT_GATEWAY is "http" but this database pays referrals through "ledger" \(recorded .+\); start with PAYOUT_GATEWAY=ledger, or switch the deployment first: npm run manage-referral-payouts -- --set-gateway http\n$/,
    );
    expect(server.stdout()).not.toContain('listening');
  });

  it('started while the database is down, answers 503 meanwhile and exits 2 once it finds another gateway recorded', async () => {
    const postgres = await startThrowawayPostgres();
    let server: ReturnType<typeof startServer> | undefined;
    try {
      const db = createDatabase(postgres.url(), { max: 1 });
      try {
        await migrate(db);
        await ensureDeploymentGateway(db, 'ledger', 'worker');
      } finally {
        await db.destroy();
      }
      await postgres.stop('fast');
      server = startServer({
        DATABASE_URL: postgres.url(),
        PORT: '0',
        LOG_LEVEL: 'info',
        PAYOUT_GATEWAY: 'http',
        TREASURY_URL: 'http://127.0.0.1:9/treasury',
      });
      const url = await waitFor(() => /"url":"(http:[^"]+)"/.exec(server!.stdout())?.[1], {
        what: 'the API to listen while the database is down',
        timeoutMs: 20_000,
      });
      expect(server.stdout()).toContain('the payout gateway is checked once it is back');
      expect((await fetch(`${url}/readyz`)).status).toBe(503);

      const exited = once(server.child, 'exit');
      await postgres.start();
      const [code] = await exited;
      expect(code).toBe(2);
      expect(server.stderr()).toMatch(
        /^api: PAYOUT_GATEWAY is "http" but this database pays referrals through "ledger"/,
      );
    } finally {
      if (server && server.child.exitCode === null) server.child.kill('SIGKILL');
      await postgres.destroy();
    }
  });
});
