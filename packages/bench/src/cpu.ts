/**
 * Where the CPU went during a measured window: user + system time of the product's processes and
 * of every Postgres process, read from /proc (Linux). On a two-core machine the API, Postgres and
 * the load client compete for the same cores, so CPU per operation explains throughput better
 * than throughput alone.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICK_MS = 10; // USER_HZ is 100 on Linux

function cpuMsOf(pid: number | string): { comm: string; ms: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces; the fields after it are fixed.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, i.e. 11 and 12 after the state field.
    return { comm, ms: (Number(fields[11]) + Number(fields[12])) * TICK_MS };
  } catch {
    return undefined;
  }
}

export interface CpuSnapshot {
  byPid: Map<number, number>;
  postgres: Map<number, number>;
}

export function cpuSnapshot(pids: number[]): CpuSnapshot {
  const byPid = new Map<number, number>();
  for (const pid of pids) {
    const cpu = cpuMsOf(pid);
    if (cpu) byPid.set(pid, cpu.ms);
  }
  const postgres = new Map<number, number>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    // not Linux: no figures
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const cpu = cpuMsOf(entry);
    if (cpu && (cpu.comm === 'postgres' || cpu.comm === 'postmaster')) postgres.set(Number(entry), cpu.ms);
  }
  return { byPid, postgres };
}

/**
 * CPU ms used between two snapshots: per watched pid, and by Postgres (backends that ended in
 * between are lost, so that figure is a lower bound; bench connections are pooled and live long).
 * Postgres time includes any other database's load on a shared server.
 */
export function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): { byPid: Map<number, number>; postgresMs: number } {
  const byPid = new Map<number, number>();
  for (const [pid, ms] of after.byPid) byPid.set(pid, ms - (before.byPid.get(pid) ?? 0));
  let postgresMs = 0;
  for (const [pid, ms] of after.postgres) postgresMs += ms - (before.postgres.get(pid) ?? 0);
  return { byPid, postgresMs };
}

/** CPU ms a process has used since it started. */
export function processCpuMs(pid: number): number | undefined {
  return cpuMsOf(pid)?.ms;
}

/**
 * Samples Postgres CPU every `intervalMs` while something runs, so backends that end before the
 * window closes (pgbench's own connections) still count, up to their last sample.
 */
export function startPostgresCpuSampler(intervalMs = 200): { stop(): number } {
  const before = cpuSnapshot([]).postgres;
  const last = new Map(before);
  const sample = () => {
    for (const [pid, ms] of cpuSnapshot([]).postgres) last.set(pid, ms);
  };
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      let total = 0;
      for (const [pid, ms] of last) total += ms - (before.get(pid) ?? 0);
      return total;
    },
  };
}
