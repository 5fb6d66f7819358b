import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createBackJob } from '../../backjob.js';
import { redis } from './backend.js';
import type { RedisJobBus } from './bus.js';
import { startTestRedis, type TestRedis } from '../../testing/redis-server.js';
import { TEST_KEY, ended, logOf, startTestApp } from '../../testing/http-test-app.js';
import { waitFor } from '../../testing/helpers.js';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { sampleJob } from '../../testing/store-contract.js';

let server: TestRedis;
before(async () => {
  server = await startTestRedis();
});
after(async () => {
  await server?.stop();
});

test('rejects a bad url or prefix with a message that says what was expected', () => {
  assert.throws(() => redis({ url: 'http://x' }), /Expected `url` to be a redis:\/\/ or rediss:\/\/ URL, got `"http:\/\/x"` \(string\)/);
  assert.throws(() => redis({ url: 'redis://127.0.0.1:1', prefix: 'a b' }), /Expected `prefix`/);
  assert.throws(() => redis({ url: 'redis://127.0.0.1:1', lockDuration: -1 }), /Expected `lockDuration` to be a positive number/);
});

test('claims a key once across every process sharing the Redis, until it expires', async () => {
  const prefix = `claim-${randomUUID()}`;
  const a = redis({ url: server.url, prefix });
  const b = redis({ url: server.url, prefix });
  try {
    assert.equal(await a.claimOnce!('sig-1', 300), true);
    assert.equal(await b.claimOnce!('sig-1', 300), false, 'another process sees the claim');
    assert.equal(await a.claimOnce!('sig-2', 300), true);
    await waitFor(async () => (await b.claimOnce!('sig-1', 300)) === true, 'the claim to expire');
  } finally {
    await a.close();
    await b.close();
  }
});

test('runs jobs with their delay and at most `concurrency` at once', async () => {
  const backjob = createBackJob({ backend: redis({ url: server.url, prefix: `run-${randomUUID()}` }), concurrency: 2, merge: false });
  let running = 0;
  let most = 0;
  backjob.define('hold', async () => {
    most = Math.max(most, ++running);
    await new Promise((r) => setTimeout(r, 100));
    running--;
    return 'ok';
  });
  try {
    await backjob.ready;
    // Long enough that the six others are done before it is due even on a loaded machine.
    const delayed = await backjob.start({ name: 'hold' }, { delay: 3 });
    const ids = await Promise.all(Array.from({ length: 6 }, () => backjob.start({ name: 'hold' })));
    await waitFor(async () => (await backjob.list({ status: 'completed' })).length === 6, 'the undelayed jobs to complete');
    assert.equal(most, 2, 'never more than two at once');
    const waiting = (await backjob.status(delayed.id))!;
    assert.equal(waiting.status, 'waiting', 'the delayed job still waits');
    await waitFor(async () => (await backjob.status(delayed.id))!.status === 'completed', 'the delayed job to run');
    const done = (await backjob.status(delayed.id))!;
    assert.ok(done.startedAt! - done.createdAt >= 2_950, `started after its delay (${done.startedAt! - done.createdAt} ms)`);
    assert.equal(ids.length, 6);
  } finally {
    await backjob.close();
  }
});

test('a worker that closes hands its jobs back: one it left for a retry, and one it took while closing, run on another worker', async () => {
  const options = { url: server.url, prefix: `hand-back-${randomUUID()}` };
  const key = 'hand-back-key-0123456789abcdef';
  const web = createBackJob({ backend: redis(options), key, worker: false, merge: false });
  const first = createBackJob({ backend: redis(options), key, concurrency: 1 });
  let second: ReturnType<typeof createBackJob> | null = null;
  // The first worker's handlers never finish on their own; the second's do.
  const define = (backjob: ReturnType<typeof createBackJob>, finish: boolean) => {
    for (const name of ['retried', 'queued']) {
      backjob.define(
        name,
        (job) => (finish ? `run by the second worker` : new Promise((_, reject) => job.signal.addEventListener('abort', () => reject(job.signal.reason)))),
        { retries: 1 },
      );
    }
  };
  define(web, false);
  define(first, false);
  try {
    await Promise.all([web.ready, first.ready]);
    const retried = await web.start({ name: 'retried' });
    await waitFor(async () => (await web.status(retried.id))?.status === 'running', 'the first worker to run the job');
    const queued = await web.start({ name: 'queued' }); // behind it: the first worker has one slot
    await first.close(); // interrupts the running job, which has a retry left
    second = createBackJob({ backend: redis(options), key });
    define(second, true);
    for (const { id } of [retried, queued]) {
      const job = await waitFor(async () => {
        const current = await web.status(id);
        return current?.status === 'completed' ? current : null;
      }, `job ${id} to run on the second worker`);
      assert.equal(job.result, 'run by the second worker');
    }
    assert.equal((await web.status(retried.id))!.attempt, 2, 'the retry is its second attempt');
  } finally {
    await second?.close();
    await first.close();
    await web.close();
  }
});

test('a route run by a worker for a web process: what it reports through req.backjob right before its response ends is kept', async () => {
  const prefix = `route-${randomUUID()}`;
  const web = await startTestApp({
    backend: redis({ url: server.url, prefix }),
    worker: false,
    merge: false,
    // Neither awaits: the response ends at once, and the worker (another process) completes the job on that end.
    appRoutes: (app) => {
      app.get('/refuse', (req, res) => {
        void req.backjob!.fail('no data for that year');
        res.end();
      });
      app.get('/report', (req, res) => {
        req.backjob!.update({ progress: 50, text: 'half way' });
        req.backjob!.log('through the context');
        res.end('written to the response\n');
      });
    },
  });
  const worker = createBackJob({ backend: redis({ url: server.url, prefix }), key: TEST_KEY, baseUrl: web.url });
  try {
    await worker.ready;
    const refused = await web.backjob.start({ route: '/refuse' });
    const report = await web.backjob.start({ route: '/report' });
    const failed = await ended(web.backjob, refused.id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error, 'no data for that year');
    const completed = await ended(web.backjob, report.id);
    assert.equal(completed.status, 'completed');
    assert.equal(completed.text, 'half way');
    assert.deepEqual(await logOf(web.backjob, report.id), ['through the context', 'written to the response']);
  } finally {
    await worker.close();
    await web.close();
  }
});

test('jobs an earlier version queued (BullMQ jobs named "run", carrying the job) run once each after the upgrade, and cancel as before', async () => {
  const prefix = `legacy-${randomUUID()}`;
  const backend = redis({ url: server.url, prefix });
  // What the earlier version left in Redis: the job rows, and one BullMQ job per job, with the job's id.
  const legacyQueue = new Queue('jobs', { connection: { host: '127.0.0.1', port: server.port }, prefix: `${prefix}:bull` });
  const legacy: string[] = [];
  for (let i = 0; i < 3; i++) {
    const { job } = await backend.store.create(sampleJob({ name: 'old', params: { i }, owner: null }));
    await legacyQueue.add('run', { id: job.id }, { jobId: job.id, removeOnComplete: true, removeOnFail: true });
    legacy.push(job.id);
  }
  await legacyQueue.close();
  const runs = new Map<string, number>();
  // The upgraded worker re-enqueues every waiting job at start-up, the legacy ones too.
  const worker = createBackJob({ backend, concurrency: 1, merge: false });
  worker.define('old', async (job) => {
    runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
    await new Promise((r) => setTimeout(r, 20));
  });
  try {
    await worker.ready;
    assert.equal(await worker.cancel(legacy[2]!), true);
    const fresh = await worker.start({ name: 'old', params: { fresh: true } });
    for (const id of [legacy[0]!, legacy[1]!, fresh.id]) await ended(worker, id);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual([legacy[0], legacy[1], fresh.id].map((id) => runs.get(id!)), [1, 1, 1], 'each ran once');
    assert.equal(runs.has(legacy[2]!), false, 'the canceled one never ran');
    for (const id of legacy.slice(0, 2)) assert.equal((await worker.status(id))!.attempt, 1);
  } finally {
    await worker.close();
  }
});

test('a process alone on the bus publishes nothing; a process that subscribes hears every append from then on', async () => {
  const prefix = `alone-${randomUUID()}`;
  const admin = new Redis(server.url);
  const publishes = async () => Number(/cmdstat_publish:calls=(\d+)/.exec(String(await admin.info('commandstats')))?.[1] ?? 0);
  const a = redis({ url: server.url, prefix });
  let b: ReturnType<typeof redis> | null = null;
  try {
    await (a.bus as RedisJobBus).ready();
    const heardByA: number[] = [];
    a.bus.subscribe((notice) => notice.type === 'events' && heardByA.push(...notice.events.map((event) => event.seq)));
    const { job } = await a.store.create(sampleJob());
    const before = await publishes();
    const [alone] = await a.store.append([{ jobId: job.id, events: [{ type: 'job:log', line: 'alone' }] }]);
    await a.bus.publish({ type: 'events', jobId: job.id, events: alone!.events });
    assert.equal(await publishes(), before, 'nobody else listens: nothing published');
    assert.deepEqual(heardByA, [2], 'the writing process still hears its own write');

    b = redis({ url: server.url, prefix });
    await (b.bus as RedisJobBus).ready();
    const heardByB: string[] = [];
    b.bus.subscribe((notice) => notice.type === 'events' && heardByB.push(...notice.events.map((event) => `${event.seq} ${event.type}`)));
    for (const line of ['one', 'two']) {
      const [result] = await a.store.append([{ jobId: job.id, events: [{ type: 'job:log', line }] }]);
      await a.bus.publish({ type: 'events', jobId: job.id, events: result!.events });
    }
    await waitFor(() => heardByB.length === 2, 'the other process to hear both appends');
    assert.deepEqual(heardByB, ['3 job:log', '4 job:log'], 'in order, once each');
    assert.deepEqual(heardByA, [2, 3, 4], 'and the writer hears them once, not echoed back');
  } finally {
    await a.close();
    await b?.close();
    await admin.quit();
  }
});
