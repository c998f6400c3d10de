/**
 * The drain scenario's reference: plain pg-boss moving jobs whose handler does nothing, with the
 * payout worker's pool size, supervise intervals, retry and expiry options and polling, as pg-boss
 * is used by default: LISTEN/NOTIFY on the queue, eight slots of one job per fetch, a slot waking an
 * idle sibling. Whatever the real worker does beyond this is the cost of paying.
 *
 *   NOOP_ROLE=insert NOOP_JOBS=n DATABASE_URL=… node packages/bench/src/noop-boss.ts   (creates the queue, inserts n jobs, exits)
 *   NOOP_ROLE=work PORT=p WORKER_CONCURRENCY=8 DATABASE_URL=… node packages/bench/src/noop-boss.ts   (works until SIGTERM; /ready answers once working)
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import closeWithGrace from 'close-with-grace';
import { PgBoss } from 'pg-boss';

export const NOOP_QUEUE = 'bench-noop';

const databaseUrl = process.env.DATABASE_URL!;
const concurrency = Number(process.env.WORKER_CONCURRENCY ?? 8);

const boss = new PgBoss({
  connectionString: databaseUrl,
  application_name: 'bench-noop-boss',
  max: concurrency + 4,
  useListenNotify: true,
  superviseIntervalSeconds: 2,
  monitorIntervalSeconds: 2,
  queueCacheIntervalSeconds: 2,
  instanceName: 'bench-noop-boss',
});
boss.on('error', (error) => console.error('pg-boss error', error));
await boss.start();
// The payout queue's options with the default PAYOUT_RETRY_* and TREASURY_TIMEOUT_MS.
if (!(await boss.getQueue(NOOP_QUEUE))) {
  await boss.createQueue(NOOP_QUEUE, {
    retryLimit: 5,
    retryDelay: 2,
    retryBackoff: true,
    expireInSeconds: 65,
    heartbeatSeconds: 10,
    notify: true,
  });
}

if (process.env.NOOP_ROLE === 'insert') {
  const count = Number(process.env.NOOP_JOBS ?? 0);
  for (let done = 0; done < count; done += 1000) {
    const jobs = Array.from({ length: Math.min(1000, count - done) }, () => {
      const id = randomUUID();
      return { id, data: { purchaseId: id } };
    });
    await boss.insert(NOOP_QUEUE, jobs);
  }
  await boss.stop({ graceful: false, close: true });
} else {
  const slots: { id: string | undefined; busy: boolean }[] = [];
  for (let index = 0; index < concurrency; index++) {
    const slot: { id: string | undefined; busy: boolean } = { id: undefined, busy: false };
    slots.push(slot);
    slot.id = await boss.work(
      NOOP_QUEUE,
      { batchSize: 1, includeMetadata: true, pollingIntervalSeconds: 0.5, notifyPollingIntervalSeconds: 0.5 },
      async ([job]) => {
        if (!job) return undefined;
        slot.busy = true;
        const idle = slots.find((s) => !s.busy && s.id !== undefined);
        if (idle?.id) boss.notifyWorker(idle.id);
        slot.busy = false;
        if (slot.id) boss.notifyWorker(slot.id);
        return undefined;
      },
    );
  }
  const server = http.createServer((_request, response) => response.end('ready'));
  server.listen(Number(process.env.PORT), '127.0.0.1');
  closeWithGrace(async () => {
    server.close();
    await boss.stop({ graceful: true, timeout: 5000, close: true });
  });
}
