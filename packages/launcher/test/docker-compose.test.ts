import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigSchema } from '@referrals/core';
import { commandRuns, toolAvailable } from '@referrals/testing';
import { REPO_ROOT } from '../src/local-setup.ts';

/**
 * No Docker engine runs here, but the compose client validates the file without one: `config`
 * resolves the anchors and variables and checks the result against the Compose schema.
 * Compose v2 (`docker compose`) is used when present, else v1 (`docker-compose`, Debian's package).
 */
const compose = commandRuns('docker', ['compose', 'version'])
  ? ['docker', 'compose']
  : commandRuns('docker-compose', ['version'])
    ? ['docker-compose']
    : undefined;
const hasCompose = toolAvailable(
  'a Docker Compose client',
  compose !== undefined,
  'install the docker compose plugin or `apt-get install docker-compose`',
);

function config(env: Record<string, string> = {}, options: string[] = []): string {
  const [command, ...args] = compose!;
  return execFileSync(command!, [...args, '-f', join(REPO_ROOT, 'docker/compose.yaml'), ...options, 'config'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

describe.skipIf(!hasCompose)('docker/compose.yaml', () => {
  it('is a valid compose file with postgres, a one-shot migrate, the api and a scalable worker', () => {
    const resolved = config({ WORKER_REPLICAS: '3', API_PORT: '8080' });
    for (const service of ['postgres:', 'migrate:', 'api:', 'worker:', 'cli:'])
      expect(resolved).toContain(`  ${service}`);
    expect(resolved).toMatch(/replicas: 3/);
    expect(resolved).toMatch(/published: "?8080"?/);
    expect(resolved).toMatch(/condition: service_completed_successfully/);
    expect(resolved).toMatch(/condition: service_healthy/);
    expect(resolved).toContain('postgres-data');
  });

  it('passes every configuration variable to the app containers, and runs each role with what it needs', () => {
    const services = (
      parse(config({ ADMIN_API_TOKEN: 'a-token-of-24-characters' })) as {
        services: Record<
          string,
          { environment: Record<string, string>; healthcheck?: { test: string[] }; expose?: string[] }
        >;
      }
    ).services;
    // EMBEDDED_PG_PORT is `pnpm start`'s own; HOST, PORT and WORKER_METRICS_PORT are set per role.
    const perRole = new Set(['EMBEDDED_PG_PORT', 'HOST', 'PORT', 'WORKER_METRICS_PORT']);
    for (const name of Object.keys(ConfigSchema.properties).filter((variable) => !perRole.has(variable))) {
      for (const role of ['migrate', 'api', 'worker', 'cli'])
        expect(services[role]!.environment, `${name} in ${role}`).toHaveProperty(name);
    }
    expect(services.api!.environment).toMatchObject({
      HOST: '0.0.0.0',
      PORT: '3000',
      ADMIN_API_TOKEN: 'a-token-of-24-characters',
    });
    expect(services.worker!.environment).toMatchObject({ HOST: '0.0.0.0', WORKER_METRICS_PORT: '9464' });
    expect(services.worker!.expose).toContain('9464');
    expect(services.worker!.healthcheck!.test.join(' ')).toContain('http://127.0.0.1:9464/metrics');
  });

  it('has an observability profile: Prometheus with the alert rules and Grafana with the dashboard', () => {
    const services = (
      parse(config({}, ['--profile', 'observability'])) as {
        services: Record<string, { volumes: (string | { source: string; target: string })[] }>;
      }
    ).services;
    const mounts = (service: string) =>
      services[service]!.volumes.map((volume) =>
        typeof volume === 'string' ? volume : `${volume.source}:${volume.target}`,
      ).join('\n');
    expect(mounts('prometheus')).toMatch(/observability\/prometheus\.yml:\/etc\/prometheus\/prometheus\.yml/);
    expect(mounts('prometheus')).toMatch(/observability\/alerts\.yml:\/etc\/prometheus\/alerts\.yml/);
    expect(mounts('grafana')).toMatch(/observability\/grafana\/dashboards:\/var\/lib\/grafana\/dashboards/);
    expect(mounts('grafana')).toMatch(/observability\/grafana\/provisioning:\/etc\/grafana\/provisioning/);
  });
});
