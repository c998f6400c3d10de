import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { METRICS } from '@referrals/core';
import { commandRuns, toolAvailable } from '@referrals/testing';
import { REPO_ROOT } from '../src/local-setup.ts';

const DIR = join(REPO_ROOT, 'docker/observability');
const read = (file: string) => readFileSync(join(DIR, file), 'utf8');

interface AlertRule {
  alert: string;
  expr: string;
}
interface RuleTest {
  alert_rule_test: { alertname: string; exp_alerts: unknown[] }[];
}

const rules = (parse(read('alerts.yml')) as { groups: { rules: AlertRule[] }[] }).groups.flatMap(
  (group) => group.rules,
);
const dashboard = JSON.parse(read('grafana/dashboards/referral-payouts.json')) as {
  panels: { title: string; targets: { expr: string }[] }[];
};

/** Metric names in a PromQL expression that belong to this service (label matchers and groupings left out). */
function metricsIn(expr: string): string[] {
  const withoutLabels = expr.replace(/\{[^}]*\}/g, '').replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '');
  return [...withoutLabels.matchAll(/\breferral_[a-z_]+/g)].map(([name]) => name.replace(/_(bucket|sum|count)$/, ''));
}

describe('alert rules and dashboard', () => {
  const known = new Set<string>(Object.values(METRICS).map((metric) => metric.name));

  it('speak only the metric vocabulary of core', () => {
    const used = [
      ...rules.map((rule) => rule.expr),
      ...dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr)),
    ].flatMap(metricsIn);
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((name) => !known.has(name))).toEqual([]);
  });

  it('cover final failures, queued age, outbox backlog, stuck purchases, the breaker and a pause', () => {
    expect(rules.map((rule) => rule.alert).sort()).toEqual(
      expect.arrayContaining([
        'ReferralOutboxBacklog',
        'ReferralPayoutFinalFailure',
        'ReferralPayoutQueuedTooLong',
        'ReferralPayoutsPaused',
        'ReferralPayoutsStuck',
        'ReferralTreasuryBreakerOpen',
      ]),
    );
  });

  it('have a unit test that fires each alert and one that clears it', () => {
    const cases = (parse(read('alerts.test.yml')) as { tests: RuleTest[] }).tests.flatMap(
      (test) => test.alert_rule_test,
    );
    for (const { alert } of rules) {
      const own = cases.filter((check) => check.alertname === alert);
      expect(
        own.some((check) => check.exp_alerts.length > 0),
        `${alert} fires in a test`,
      ).toBe(true);
      expect(
        own.some((check) => check.exp_alerts.length === 0),
        `${alert} clears in a test`,
      ).toBe(true);
    }
  });
});

const hasPromtool = toolAvailable('promtool', commandRuns('promtool', ['--version']), '`apt-get install prometheus`');

describe.skipIf(!hasPromtool)('promtool', () => {
  const promtool = (...args: string[]) => spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8' });

  it('accepts the rules and the Prometheus configuration', () => {
    const rulesCheck = promtool('check', 'rules', 'alerts.yml');
    expect(rulesCheck.stdout + rulesCheck.stderr).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(rulesCheck.status).toBe(0);
    const configCheck = promtool('check', 'config', 'prometheus.yml');
    expect(configCheck.stdout + configCheck.stderr, configCheck.stderr).toContain('SUCCESS');
    expect(configCheck.status).toBe(0);
  });

  it('passes the unit tests: each alert fires on its condition and clears after it', () => {
    const result = promtool('test', 'rules', 'alerts.test.yml');
    expect(result.stdout + result.stderr).toContain('SUCCESS');
    expect(result.status, result.stdout + result.stderr).toBe(0);
  });
});
