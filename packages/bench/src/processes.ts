/**
 * Child processes of a benchmark run: the API, workers, the baseline server and the load client
 * each run as their own Node process (`process.execPath` + entry file), so each has its own event
 * loop and the figures are not one process's scheduling.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const entry = (relative: string) => join(REPO_ROOT, relative);

export const API_ENTRY = entry('packages/api/src/server.ts');
export const WORKER_ENTRY = entry('packages/worker/src/main.ts');
export const SYNC_CONFIRM_ENTRY = entry('packages/bench/src/sync-confirm-server.ts');
export const LOAD_CLIENT_ENTRY = entry('packages/bench/src/load-client.ts');
export const NOOP_BOSS_ENTRY = entry('packages/bench/src/noop-boss.ts');

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface Service {
  name: string;
  pid: number;
  logFile: string;
  /** Peak resident set size so far (VmHWM), kB. */
  peakRssKb(): number | undefined;
  /** SIGTERM, then SIGKILL after the grace period; resolves with the peak RSS read just before. */
  stop(graceMs?: number): Promise<{ peakRssKb: number | undefined; code: number | null }>;
  exited: Promise<number | null>;
}

export function readPeakRssKb(pid: number): number | undefined {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

export function startService(
  name: string,
  file: string,
  env: Record<string, string>,
  logDir: string,
  nodeArgs: string[] = [],
): Service {
  const logFile = join(logDir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, file], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} did not start`);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let lastPeak: number | undefined;
  const peakRssKb = () => {
    const now = readPeakRssKb(pid);
    if (now !== undefined) lastPeak = now;
    return lastPeak;
  };
  return {
    name,
    pid,
    logFile,
    peakRssKb,
    exited,
    async stop(graceMs = 10_000) {
      const peak = peakRssKb();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const code = await exited;
        clearTimeout(timer);
        return { peakRssKb: peak, code };
      }
      return { peakRssKb: peak, code: child.exitCode };
    },
  };
}

export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Polls an HTTP URL until it answers 2xx; fails early when the service exits. */
export async function waitForHttp(service: Service, url: string, timeoutMs = 30_000): Promise<void> {
  let exitCode: number | null | undefined;
  void service.exited.then((code) => (exitCode = code ?? -1));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exitCode !== undefined)
      throw new Error(`${service.name} exited (${exitCode}) before it was ready:\n${tail(service.logFile)}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`${service.name} not ready at ${url} after ${timeoutMs} ms:\n${tail(service.logFile)}`);
    await sleep(50);
  }
}

/** Runs a Node entry to completion and returns its stdout; stderr goes to the log. */
export function runToCompletion(
  name: string,
  file: string,
  args: string[],
  env: Record<string, string>,
  logDir: string,
): Promise<string> {
  const logFile = join(logDir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [file, ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', fd],
  });
  closeSync(fd);
  const chunks: Buffer[] = [];
  child.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve(Buffer.concat(chunks).toString('utf8'));
      else reject(new Error(`${name} exited with ${code}:\n${tail(logFile)}`));
    });
  });
}
