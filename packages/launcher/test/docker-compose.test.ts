import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandRuns, toolAvailable } from '@referrals/testing';
import { REPO_ROOT } from '../src/local-setup.ts';

/**
 * No Docker engine runs here, but the compose client validates the file without one: `config`
 * resolves the anchors and variables and checks the result against the Compose schema.
 * Compose v2 (`docker compose`) is used when present, else v1 (`docker-compose`, Debian's package).
 */
const compose = commandRuns('docker', ['compose', 'version']) ? ['docker', 'compose'] : commandRuns('docker-compose', ['version']) ? ['docker-compose'] : undefined;
const hasCompose = toolAvailable('a Docker Compose client', compose !== undefined, 'install the docker compose plugin or `apt-get install docker-compose`');

function config(env: Record<string, string> = {}): string {
  const [command, ...args] = compose!;
  return execFileSync(command!, [...args, '-f', join(REPO_ROOT, 'docker/compose.yaml'), 'config'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

describe.skipIf(!hasCompose)('docker/compose.yaml', () => {
  it('is a valid compose file with postgres, a one-shot migrate, the api and a scalable worker', () => {
    const resolved = config({ WORKER_REPLICAS: '3', API_PORT: '8080' });
    for (const service of ['postgres:', 'migrate:', 'api:', 'worker:', 'cli:']) expect(resolved).toContain(`  ${service}`);
    expect(resolved).toMatch(/replicas: 3/);
    expect(resolved).toMatch(/published: "?8080"?/);
    expect(resolved).toMatch(/condition: service_completed_successfully/);
    expect(resolved).toMatch(/condition: service_healthy/);
    expect(resolved).toContain('postgres-data');
  });
});
