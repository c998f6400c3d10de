import { Writable } from 'node:stream';
import { sql } from 'kysely';
import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  BREAKER_FAILURES,
  classifyTreasuryStatus,
  DomainError,
  type GateTransition,
  pausePayouts,
  PROBE_MAX_MS,
  readTreasuryGate,
  resumePayouts,
  TreasuryGate,
} from '@referrals/core';
import { waitFor } from '@referrals/testing';
import { useTestDatabase } from '@referrals/testing/vitest';

const t = useTestDatabase();

/** Log lines a gate wrote, parsed. */
function capturingLogger() {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** Two handles on one gate, as two worker processes have: neither trusts a cached read. */
function twoProcesses() {
  const transitions: GateTransition[] = [];
  const logs = capturingLogger();
  const make = () =>
    new TreasuryGate({
      db: t.db,
      logger: logs.logger,
      refreshMs: 0,
      probeLeaseMs: 10_000,
      onTransition: (tr) => transitions.push(tr),
    });
  return { a: make(), b: make(), transitions, lines: logs.lines };
}

const gateRow = () => t.db.selectFrom('treasury_gate').selectAll().executeTakeFirstOrThrow();

/** Moves the next probe to now instead of waiting out its interval. */
const probeDueNow = () => sql`update treasury_gate set next_probe_at = now()`.execute(t.db);

const PASS = { kind: 'pass' } as const;

async function trip(gate: TreasuryGate, other: TreasuryGate): Promise<void> {
  for (let i = 0; i < BREAKER_FAILURES; i++) await (i % 2 ? gate : other).report(PASS, 'transient', `failure ${i}`);
}

beforeEach(async () => {
  await sql`update treasury_gate set state = 'closed', consecutive_failures = 0, last_error = null, last_error_at = null,
    probe_interval_ms = null, next_probe_at = null, probe_owner = null, probe_until = null, paused_by = null, paused_reason = null`.execute(
    t.db,
  );
  await sql`delete from treasury_gate_events`.execute(t.db);
});

describe('classifyTreasuryStatus', () => {
  it('treats 5xx, 429 and 408 as transient and every other 4xx as permanent', () => {
    for (const status of [500, 502, 503, 504, 429, 408])
      expect(classifyTreasuryStatus(status), String(status)).toBe('transient');
    for (const status of [400, 401, 403, 404, 409, 410, 422])
      expect(classifyTreasuryStatus(status), String(status)).toBe('permanent');
  });
});

describe('the circuit breaker', () => {
  it('opens for every process after a run of transient failures across them, logging the opening once', async () => {
    const { a, b, transitions, lines } = twoProcesses();
    for (let i = 0; i < BREAKER_FAILURES - 1; i++) await (i % 2 ? a : b).report(PASS, 'transient', `failure ${i}`);
    expect(await a.admit()).toEqual(PASS);
    const after = await a.report(PASS, 'transient', 'treasury answered 503');
    expect(after).toMatchObject({
      state: 'open',
      lastError: 'treasury answered 503',
      consecutiveFailures: BREAKER_FAILURES,
    });
    expect((await a.admit()).kind).toBe('shut');
    expect((await b.admit()).kind).toBe('shut');
    // A late failure of a transfer already on the wire changes nothing.
    await b.report(PASS, 'transient', 'late');
    expect(transitions.map((tr) => `${tr.from}->${tr.to}`)).toEqual(['closed->open']);
    expect(lines.filter((l) => l.level === 40 && /opened/.test(l.msg))).toHaveLength(1);
    expect((await gateRow()).probe_interval_ms).toBe(1000);
  });

  it('resets the run whenever the treasury answers, paying or refusing', async () => {
    const { a, b } = twoProcesses();
    for (const verdict of ['paid', 'permanent'] as const) {
      for (let i = 0; i < BREAKER_FAILURES - 1; i++) await a.report(PASS, 'transient', 'timeout');
      await b.report(PASS, verdict);
      expect(await readTreasuryGate(t.db)).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
    }
    await a.report(PASS, 'transient', 'timeout');
    expect((await readTreasuryGate(t.db)).state).toBe('closed');
  });

  it('hands out one probe at a time, doubles its interval on failure up to the cap, and closes on the first success', async () => {
    const { a, b, transitions, lines } = twoProcesses();
    await trip(a, b);
    // The first probe is due one second after opening.
    const probe = await waitFor(
      async () => {
        const admission = await a.admit();
        return admission.kind === 'probe' ? admission : undefined;
      },
      { timeoutMs: 5000, what: 'the first probe' },
    );
    expect((await b.admit()).kind).toBe('shut');
    expect((await a.admit()).kind).toBe('shut');

    await a.report(probe, 'transient', 'still down');
    expect(await gateRow()).toMatchObject({ state: 'open', probe_interval_ms: 2000, probe_owner: null });
    const { rows } = await sql<{
      wait: number;
    }>`select extract(epoch from next_probe_at - now())::float8 as wait from treasury_gate`.execute(t.db);
    expect(rows[0]!.wait).toBeGreaterThan(1);
    expect((await b.admit()).kind).toBe('shut');

    // Interval grows 2 → 4 → 8 → 16 → 30 s and stays there.
    const intervals: number[] = [];
    for (let i = 0; i < 5; i++) {
      await probeDueNow();
      const next = await b.admit();
      expect(next.kind).toBe('probe');
      await b.report(next, 'transient', 'still down');
      intervals.push((await gateRow()).probe_interval_ms!);
    }
    expect(intervals).toEqual([4000, 8000, 16000, PROBE_MAX_MS, PROBE_MAX_MS]);

    await probeDueNow();
    const last = await a.admit();
    expect(last.kind).toBe('probe');
    expect(await a.report(last, 'paid')).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
    expect(await gateRow()).toMatchObject({ probe_interval_ms: null, next_probe_at: null, probe_owner: null });
    expect(await b.admit()).toEqual(PASS);
    expect(transitions.filter((tr) => tr.from === 'closed' && tr.to === 'open')).toHaveLength(1);
    expect(transitions.filter((tr) => tr.to === 'closed')).toHaveLength(1);
    expect(lines.filter((l) => l.level === 30 && /closed/.test(l.msg))).toHaveLength(1);
  });

  it('a refusal from the probe also closes it: the treasury is answering', async () => {
    const { a, b } = twoProcesses();
    await trip(a, b);
    await probeDueNow();
    const probe = await a.admit();
    expect(probe.kind).toBe('probe');
    expect((await a.report(probe, 'permanent')).state).toBe('closed');
  });

  it('lets another process probe when the probing one died', async () => {
    const { a, b } = twoProcesses();
    await trip(a, b);
    await probeDueNow();
    const orphan = await a.admit();
    expect(orphan.kind).toBe('probe');
    expect((await b.admit()).kind).toBe('shut');
    await sql`update treasury_gate set probe_until = now() - interval '1 second'`.execute(t.db);
    const taken = await b.admit();
    expect(taken.kind).toBe('probe');
    // The dead probe's late report no longer speaks for the gate.
    await a.report(orphan, 'paid');
    expect((await readTreasuryGate(t.db)).state).toBe('half_open');
    await b.report(taken, 'paid');
    expect((await readTreasuryGate(t.db)).state).toBe('closed');
  });
});

describe('pause and resume', () => {
  it('holds the gate shut with who, why and when, even when a probe is due, until resumed', async () => {
    const { a, b, transitions } = twoProcesses();
    await trip(a, b);
    const paused = await pausePayouts(t.db, { actor: 'admin-api', operator: 'alice', reason: '  fraud review  ' });
    expect(paused).toMatchObject({ state: 'paused', by: 'alice', reason: 'fraud review' });
    await probeDueNow().catch(() => {});
    expect(await a.admit()).toMatchObject({ kind: 'shut', view: { state: 'paused', by: 'alice' } });
    // A failure reported while paused leaves the pause alone.
    await b.report(PASS, 'transient', 'late failure');
    expect((await readTreasuryGate(t.db)).state).toBe('paused');

    const again = await pausePayouts(t.db, { actor: 'cli', operator: 'bob', reason: 'me too' }).catch(
      (e: unknown) => e,
    );
    expect(again).toBeInstanceOf(DomainError);
    expect(again).toMatchObject({
      code: 'conflict',
      message: expect.stringMatching(/already paused by alice since .*: fraud review/),
    });

    expect(await resumePayouts(t.db, { actor: 'cli', operator: 'bob' })).toMatchObject({
      state: 'closed',
      by: null,
      reason: null,
      consecutiveFailures: 0,
    });
    expect(await a.admit()).toEqual(PASS);
    await expect(resumePayouts(t.db, { actor: 'cli', operator: 'bob' })).rejects.toMatchObject({
      code: 'conflict',
      message: /not paused/,
    });

    const events = await t.db
      .selectFrom('treasury_gate_events')
      .select(['from_state', 'to_state', 'actor', 'operator', 'reason'])
      .orderBy('id')
      .execute();
    expect(events).toEqual([
      {
        from_state: 'closed',
        to_state: 'open',
        actor: 'worker',
        operator: null,
        reason: `${BREAKER_FAILURES} transient treasury failures in a row`,
      },
      { from_state: 'open', to_state: 'paused', actor: 'admin-api', operator: 'alice', reason: 'fraud review' },
      { from_state: 'paused', to_state: 'closed', actor: 'cli', operator: 'bob', reason: 'fraud review' },
    ]);
    expect(transitions.map((tr) => tr.to)).toEqual(['open']);
  });

  it('refuses a blank reason without writing anything', async () => {
    await expect(pausePayouts(t.db, { actor: 'cli', operator: 'bob', reason: '   ' })).rejects.toMatchObject({
      code: 'validation_failed',
    });
    expect((await readTreasuryGate(t.db)).state).toBe('closed');
    expect(await t.db.selectFrom('treasury_gate_events').selectAll().execute()).toEqual([]);
  });
});
