/**
 * HTTP load client, run as its own process so its CPU is not the API's. It drives create → confirm
 * pairs against the marketplace API, either closed-loop (N connections, each waits for its answer:
 * measures capacity) or open-loop (purchases arrive at a fixed rate whatever the answers: measures
 * latency below capacity). Every latency is recorded; the parent computes the percentiles.
 *
 *   node packages/bench/src/load-client.ts <plan.json>   → one JSON LoadResult line on stdout
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** The marketplace credential the benchmarked API is started with and the load sends. */
export const SERVICE_TOKEN = 'bench-service-token-0123456789';
export const SERVICE_AUTHORIZATION = `Bearer ${SERVICE_TOKEN}`;

export interface LoadPlan {
  baseUrl: string;
  mode: 'closed' | 'open';
  /** closed: concurrent connections, each running create → confirm back to back. */
  connections?: number;
  /** open: purchases started per second. */
  rate?: number;
  durationMs: number;
  /** Load before the measured window; its samples are dropped. */
  warmupMs?: number;
  buyerIds: string[];
  contentIds: string[];
  /** Instead of creating purchases, confirm these pending ones (file of JSON string array). */
  pendingIdsFile?: string;
}

export interface LoadResult {
  /** Measured window, ms. */
  elapsedMs: number;
  /** Purchases confirmed (2xx) inside the window. */
  confirmed: number;
  /** HTTP requests answered inside the window (creates + confirms, any status). */
  requests: number;
  createMs: number[];
  confirmMs: number[];
  /** open loop: arrival (scheduled start) → confirm answered, so a late start counts against us. */
  pairMs: number[];
  errors: Record<string, number>;
  /** Arrivals the client could not start on time (open loop), a sign the client itself lagged. */
  lateStarts: number;
  /** Purchases confirmed over the whole run, warm-up included (to divide CPU time by). */
  confirmedTotal: number;
  /** CPU time this client used, ms. */
  cpuMs: number;
}

interface Answer {
  status: number;
  body: string;
}

function post(agent: http.Agent, url: URL, path: string, body: unknown): Promise<Answer> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          authorization: SERVICE_AUTHORIZATION,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(payload);
  });
}

export async function runLoad(plan: LoadPlan): Promise<LoadResult> {
  const url = new URL(plan.baseUrl);
  const open = plan.mode === 'open';
  const agent = new http.Agent({ keepAlive: true, maxSockets: open ? 1024 : (plan.connections ?? 32) });
  const pending: string[] = plan.pendingIdsFile
    ? (JSON.parse(readFileSync(plan.pendingIdsFile, 'utf8')) as string[])
    : [];
  let nextPending = 0;

  const result: LoadResult = {
    elapsedMs: 0,
    confirmed: 0,
    requests: 0,
    createMs: [],
    confirmMs: [],
    pairMs: [],
    errors: {},
    lateStarts: 0,
    confirmedTotal: 0,
    cpuMs: 0,
  };
  const cpuAtStart = process.cpuUsage();
  const start = performance.now();
  const measureFrom = start + (plan.warmupMs ?? 0);
  const end = measureFrom + plan.durationMs;
  const inWindow = (t: number) => t >= measureFrom && t <= end;
  // Open loop judges each purchase by when it arrived, so slow answers after the window still count.
  const counted = (scheduledAt: number, done: number) => inWindow(open ? scheduledAt : done);
  const fail = (what: string) => {
    result.errors[what] = (result.errors[what] ?? 0) + 1;
  };
  let sequence = 0;

  async function purchase(scheduledAt: number): Promise<void> {
    const n = sequence++;
    let purchaseId: string | undefined;
    if (plan.pendingIdsFile) {
      purchaseId = pending[nextPending++];
      if (purchaseId === undefined) {
        fail('out_of_pending_purchases');
        return;
      }
    } else {
      const buyerId = plan.buyerIds[n % plan.buyerIds.length]!;
      const contentId = plan.contentIds[(n * 7919) % plan.contentIds.length]!;
      const sent = performance.now();
      let answer: Answer;
      try {
        answer = await post(agent, url, '/api/marketplace/purchases', { buyerId, contentId });
      } catch (error) {
        fail(`create:${(error as NodeJS.ErrnoException).code ?? 'network'}`);
        return;
      }
      const done = performance.now();
      if (counted(scheduledAt, done)) {
        result.requests++;
        result.createMs.push(done - sent);
      }
      if (answer.status !== 201) {
        fail(`create:${answer.status}`);
        return;
      }
      purchaseId = (JSON.parse(answer.body) as { id: string }).id;
    }
    const sent = performance.now();
    let answer: Answer;
    try {
      answer = await post(agent, url, `/api/marketplace/purchase/${purchaseId}/confirm`, {
        paymentReference: `pay_${purchaseId}`,
      });
    } catch (error) {
      fail(`confirm:${(error as NodeJS.ErrnoException).code ?? 'network'}`);
      return;
    }
    const done = performance.now();
    if (answer.status === 200) result.confirmedTotal++;
    if (!counted(scheduledAt, done)) return;
    result.requests++;
    result.confirmMs.push(done - sent);
    result.pairMs.push(done - scheduledAt);
    if (answer.status === 200) result.confirmed++;
    else fail(`confirm:${answer.status}`);
  }

  if (open) {
    const rate = plan.rate ?? 100;
    const interval = 1000 / rate;
    const inFlight = new Set<Promise<void>>();
    let i = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        while (start + i * interval <= now && start + i * interval < end) {
          const scheduledAt = start + i * interval;
          if (now - scheduledAt > 5) result.lateStarts++;
          const p = purchase(scheduledAt).finally(() => inFlight.delete(p));
          inFlight.add(p);
          i++;
        }
        if (start + i * interval >= end) return resolve();
        setTimeout(tick, Math.max(0, start + i * interval - performance.now()));
      };
      tick();
    });
    await Promise.all(inFlight);
  } else {
    const loops = Array.from({ length: plan.connections ?? 32 }, async () => {
      while (performance.now() < end) await purchase(performance.now());
    });
    await Promise.all(loops);
  }
  result.elapsedMs = (open ? end : Math.min(performance.now(), end)) - measureFrom;
  agent.destroy();
  const cpu = process.cpuUsage(cpuAtStart);
  result.cpuMs = (cpu.user + cpu.system) / 1000;
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const plan = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as LoadPlan;
  runLoad(plan).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
