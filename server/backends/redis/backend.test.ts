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

test('two workers share the queue: each keeps to its own concurrency, both take work, every job runs once', async () => {
  const options = { url: server.url, prefix: `two-${randomUUID()}` };
  const workers = [0, 1].map(() => createBackJob({ backend: redis(options), concurrency: 2, merge: false }));
  const running = [0, 0];
  const most = [0, 0];
  const runs = new Map<string, number>();
  workers.forEach((backjob, w) =>
    backjob.define('hold', async (job) => {
      runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
      most[w] = Math.max(most[w]!, ++running[w]!);
      await new Promise((r) => setTimeout(r, 60));
      running[w]!--;
    }),
  );
  try {
    await Promise.all(workers.map((w) => w.ready));
    const ids = [];
    for (let i = 0; i < 16; i++) ids.push((await workers[i % 2]!.start({ name: 'hold', params: { i } })).id);
    for (const id of ids) await ended(workers[0]!, id);
    assert.deepEqual(most, [2, 2], 'each worker at most two at once, and each used both its slots');
    assert.deepEqual([...runs.values()], ids.map(() => 1), 'each job once');
  } finally {
    await Promise.all(workers.map((w) => w.close()));
  }
});

test('an idle worker runs a delayed job when it is due, not at its next sweep', async () => {
  // Sweeps (the fallback for a missed wake) every minute: only the timer to the due time can be on time.
  const backjob = createBackJob({ backend: redis({ url: server.url, prefix: `due-${randomUUID()}`, stalledInterval: 60_000 }), merge: false });
  backjob.define('noop', async () => 'ok');
  try {
    await backjob.ready;
    const first = await backjob.start({ name: 'noop' }, { delay: 1 });
    await new Promise((r) => setTimeout(r, 200)); // the worker is idle, its timer set to the first job
    const second = await backjob.start({ name: 'noop' }, { delay: 0.5 }); // due sooner: the wake moves the timer earlier
    for (const { id } of [first, second]) {
      const job = await ended(backjob, id);
      const late = job.startedAt! - job.runAt;
      // Well before the next sweep (a minute away), whatever the load.
      assert.ok(late >= -5 && late < 5_000, `started ${late} ms after it was due`);
    }
  } finally {
    await backjob.close();
  }
});

test('a cancel removes a waiting job from the queue and aborts a running one, which frees its slot', async () => {
  const backjob = createBackJob({ backend: redis({ url: server.url, prefix: `cancel-${randomUUID()}` }), concurrency: 1, merge: false });
  const ran: string[] = [];
  backjob.define('block', (job) => {
    ran.push(job.id);
    return new Promise((_, reject) => job.signal.addEventListener('abort', () => reject(job.signal.reason)));
  });
  backjob.define('quick', async (job) => void ran.push(job.id));
  try {
    await backjob.ready;
    const running = await backjob.start({ name: 'block' });
    await waitFor(async () => (await backjob.status(running.id))?.status === 'running', 'the blocking job to run');
    const waiting = await backjob.start({ name: 'quick' });
    const next = await backjob.start({ name: 'quick' });
    assert.equal(await backjob.cancel(waiting.id), true);
    assert.equal(await backjob.cancel(running.id), true);
    assert.equal((await ended(backjob, running.id)).status, 'canceled');
    assert.equal((await ended(backjob, next.id)).status, 'completed', 'the slot went to the next job');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(ran, [running.id, next.id], 'the canceled waiting job never ran');
    assert.equal((await backjob.status(waiting.id))!.status, 'canceled');
  } finally {
    await backjob.close();
  }
});

test('jobs of the version with BullMQ turns run once each after the upgrade; a taken one whose worker is gone comes back as lost; BullMQ is drained', async () => {
  const prefix = `turns-${randomUUID()}`;
  const backend = redis({ url: server.url, prefix, lockDuration: 1_000, stalledInterval: 200 });
  const fair = `${prefix}:fair:`;
  // What that version left: rows listed by their create, one BullMQ turn per job, and one job a
  // turn had taken (unlisted, under `picks`) whose worker died mid-run with a retry left.
  const legacyQueue = new Queue('jobs', { connection: { host: '127.0.0.1', port: server.port }, prefix: `${prefix}:bull` });
  const listed: string[] = [];
  for (let i = 0; i < 3; i++) {
    const { job } = await backend.store.create(sampleJob({ name: 'old', params: { i }, owner: null, retriesLeft: 1 }));
    await legacyQueue.add('turn', { id: job.id }, { removeOnComplete: true, removeOnFail: true });
    listed.push(job.id);
  }
  const admin = new Redis(server.url);
  const { job: taken } = await backend.store.create(sampleJob({ name: 'old', params: { taken: true }, owner: null, retriesLeft: 1 }));
  await legacyQueue.add('turn', { id: taken.id }, { removeOnComplete: true, removeOnFail: true });
  await admin.multi().zrem(`${fair}q:app`, taken.id).lrem(`${fair}round:this`, 0, 'app').rpush(`${fair}round:this`, 'app').hset(`${fair}picks`, 'some-turn', taken.id).exec();
  await backend.store.append([{ jobId: taken.id, events: [{ type: 'job:start', attempt: 1 }], runner: 'dead-worker' }]);
  await legacyQueue.close();
  const runs = new Map<string, number>();
  const worker = createBackJob({ backend, concurrency: 2, merge: false });
  worker.define('old', async (job) => {
    runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
  });
  try {
    await worker.ready;
    for (const id of listed) assert.equal((await ended(worker, id)).status, 'completed');
    const retried = await ended(worker, taken.id);
    assert.equal(retried.status, 'completed', 'the taken job came back as lost, and ran again on its retry');
    assert.equal(retried.attempt, 2);
    assert.deepEqual([...listed, taken.id].map((id) => runs.get(id)), [1, 1, 1, 1], 'each ran once here');
    await waitFor(async () => (await admin.exists(...['wait', 'delayed', 'active', 'paused', 'prioritized'].map((list) => `${prefix}:bull:jobs:${list}`))) === 0, 'the turns to be drained');
    assert.equal(await admin.exists(`${fair}picks`), 0);
  } finally {
    await worker.close();
    await admin.quit();
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
