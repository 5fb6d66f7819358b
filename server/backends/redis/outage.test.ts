import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { BackJob, BusNotice } from '../../types.js';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { createBackJob } from '../../backjob.js';
import { LiveServer, TestClient, asUser, userOf } from '../../testing/live-test-kit.js';
import { settlesWithin } from '../../core/settle.js';
import { gate } from '../../testing/helpers.js';
import { redis } from './backend.js';
import { startTestRedis, type TestRedis } from '../../testing/redis-server.js';
import { waitFor } from '../../testing/helpers.js';
import { sampleJob } from '../../testing/store-contract.js';

let server: TestRedis;
before(async () => {
  server = await startTestRedis();
});
after(async () => {
  await server?.stop();
});

test('a Redis crash mid-job loses no acknowledged event, writes none twice, and watchers catch up', async () => {
  const prefix = `outage-${randomUUID()}`;
  // Two processes' worth of connections: a writer and a watcher elsewhere.
  const writer = redis({ url: server.url, prefix });
  const watcher = redis({ url: server.url, prefix });
  try {
    const seen = new Map<number, string>();
    watcher.bus.subscribe((message: BusNotice) => {
      if (message.type !== 'events') return;
      for (const event of message.events) seen.set(event.seq, event.type === 'job:log' ? event.line : event.type);
    });
    await (watcher.bus as unknown as { ready(): Promise<unknown> }).ready();

    const { job } = await writer.store.create(sampleJob());
    await writer.bus.publish({ type: 'events', jobId: job.id, events: (await writer.store.eventsAfter(job.id, 0, 1)) });
    const acknowledged: number[] = [];
    let crashed = false;
    const producing = (async () => {
      for (let i = 0; i < 400; i++) {
        const [result] = await writer.store.append([{ jobId: job.id, events: [{ type: 'job:log', line: `line ${i}` }] }]);
        acknowledged.push(result!.events[0]!.seq);
        await writer.bus.publish({ type: 'events', jobId: job.id, events: result!.events });
        if (i === 150) {
          // Crash Redis for real (no shutdown, no final fsync) while the writer keeps going.
          void server.kill('SIGKILL').then(async () => {
            await new Promise((r) => setTimeout(r, 300));
            await server.start();
            crashed = true;
          });
        }
      }
      const [end] = await writer.store.append([{ jobId: job.id, events: [{ type: 'job:completed' }] }]);
      await writer.bus.publish({ type: 'events', jobId: job.id, events: end!.events });
    })();
    await producing;
    assert.ok(crashed, 'Redis was restarted while the job wrote');

    const events = await watcher.store.eventsAfter(job.id, 0, 10_000);
    assert.deepEqual(
      events.map((e) => e.seq),
      Array.from({ length: 402 }, (_, i) => i + 1),
      'gap-free seqs after the crash',
    );
    const lines = events.flatMap((e) => (e.type === 'job:log' ? [e.line] : []));
    assert.deepEqual(lines, Array.from({ length: 400 }, (_, i) => `line ${i}`), 'every line once, in order');
    for (const seq of acknowledged) assert.ok(events[seq - 1], `acknowledged seq ${seq} survived`);

    await waitFor(() => seen.size === 402, 'the other process to see every event');
    assert.equal(seen.get(402), 'job:completed');
    assert.equal((await watcher.store.get(job.id))!.status, 'completed');
  } finally {
    await writer.close();
    await watcher.close();
  }
});

test('closing the backend just as a reconnect completes rejects nothing unhandled', async () => {
  // The race: a subscriber connection asks Redis whether it is ready (INFO) after an
  // outage, and the app closes before the reply. If ioredis then resubscribed by itself,
  // the close would reject that subscribe, and nobody would handle it.
  const subscribers = new Set<object>();
  const { subscribe, info } = Redis.prototype;
  let restarted = false;
  let closing: Promise<void> | null = null;
  let backend: ReturnType<typeof redis> | null = null;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  Redis.prototype.subscribe = function (this: Redis, ...args: unknown[]) {
    subscribers.add(this);
    return (subscribe as (...a: unknown[]) => ReturnType<Redis['subscribe']>).apply(this, args);
  } as Redis['subscribe'];
  Redis.prototype.info = function (this: Redis, ...args: unknown[]) {
    const reply = (info as (...a: unknown[]) => ReturnType<Redis['info']>).apply(this, args);
    if (restarted && !closing && subscribers.has(this)) closing = backend!.close();
    return reply;
  } as Redis['info'];
  try {
    backend = redis({ url: server.url, prefix: `close-race-${randomUUID()}` });
    await (backend.bus as unknown as { ready(): Promise<unknown> }).ready();
    await server.kill('SIGKILL');
    restarted = true;
    await server.start();
    await waitFor(() => closing !== null, 'the subscriber to reconnect and ask whether Redis is ready');
    await closing;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(unhandled.map(String), []);
  } finally {
    Redis.prototype.subscribe = subscribe;
    Redis.prototype.info = info;
    process.off('unhandledRejection', onUnhandled);
    if (!closing) await backend?.close();
  }
});

/** A TCP relay to the test Redis that can cut one process off it (a network partition), then let it back. */
async function partitionable(target: TestRedis) {
  const sockets = new Set<Socket>();
  let cut = false;
  const relay = createServer((socket) => {
    if (cut) return void socket.destroy();
    const upstream = connect(target.port, '127.0.0.1');
    for (const end of [socket, upstream]) {
      sockets.add(end);
      end.on('error', () => {});
      end.on('close', () => (sockets.delete(end), socket.destroy(), upstream.destroy()));
    }
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(relay.address() as AddressInfo).port}`,
    cut(): void {
      cut = true;
      for (const socket of sockets) socket.destroy();
    },
    heal(): void {
      cut = false;
    },
    close(): void {
      this.cut();
      relay.close();
    },
  };
}

test("a web process cut off from Redis tells its watchers, once back, about jobs it had not heard of before the cut", async () => {
  const prefix = `partition-${randomUUID()}`;
  const relay = await partitionable(server);
  const release = gate();
  const define = (backjob: BackJob) => {
    backjob.define('blocker', () => release.promise);
    backjob.define('quick', () => 'done');
  };
  // The web process reaches Redis through the relay; the worker directly.
  const web = await LiveServer.start({ backjob: { backend: redis({ url: relay.url, prefix }), worker: false }, define });
  const worker = createBackJob({ backend: redis({ url: server.url, prefix }), key: 'live-test-key-0123456789abcdef', concurrency: 1 });
  define(worker);
  const client = await TestClient.open(web.url);
  try {
    const blocker = await web.backjob.start({ name: 'blocker' });
    await waitFor(async () => (await web.backjob.status(blocker.id))?.status === 'running', 'the worker to run the blocker');
    const quick = await web.backjob.start({ name: 'quick' }); // waits behind it: one slot
    client.send({ type: 'subscribe', job: quick.id, token: quick.token });
    await client.next((m): m is Extract<typeof m, { type: 'snapshot' }> => m.type === 'snapshot' && m.job === quick.id, 'the snapshot');

    relay.cut();
    release.open(); // while the web process is away, the job it watches starts and completes
    await waitFor(async () => (await worker.status(quick.id))?.status === 'completed', 'the job to complete');
    relay.heal();

    await waitFor(() => client.events(quick.id).some((event) => event.type === 'job:completed'), 'the watcher to hear the job complete');
    assert.deepEqual(
      client.events(quick.id).map((event) => event.type),
      ['job:created', 'job:start', 'job:completed'],
      'the whole log, each event once',
    );
  } finally {
    release.open();
    await client.close();
    await worker.close();
    await web.close();
    relay.close();
  }
});

test('close() during a Redis outage settles, in bounded time, instead of waiting for Redis forever', async () => {
  const prefix = `close-outage-${randomUUID()}`;
  const backjob = createBackJob({ backend: redis({ url: server.url, prefix }), key: 'close-outage-key-0123456789abcdef' });
  const errors: Error[] = [];
  backjob.on('error', (error) => errors.push(error));
  backjob.define('long', (job) => new Promise((_, reject) => job.signal.addEventListener('abort', () => reject(job.signal.reason))));
  const { id } = await backjob.start({ name: 'long' });
  await waitFor(async () => (await backjob.status(id))?.status === 'running', 'the job to run');
  await server.kill('SIGKILL');
  try {
    // The job's end cannot be written, the queue cannot be told, QUIT gets no answer. The
    // shutdown's own bounds add up to about 15 s; twice that leaves room for a slow machine.
    assert.ok(await settlesWithin(backjob.close(), 30_000), 'close() settled');
    assert.ok(errors.some((error) => /did not answer/.test(error.message)), 'the unwritten end is reported');
  } finally {
    await server.start();
  }
});

test('a web process cut off from Redis pushes its live lists, once back, the jobs that changed or were created meanwhile', async () => {
  const prefix = `partition-lists-${randomUUID()}`;
  const relay = await partitionable(server);
  const web = await LiveServer.start({ backjob: { backend: redis({ url: relay.url, prefix }), worker: false } });
  const worker = createBackJob({ backend: redis({ url: server.url, prefix }), key: 'live-test-key-0123456789abcdef', concurrency: 1, identify: userOf });
  worker.define('quick', () => 'done');
  const client = await TestClient.open(web.url, { headers: { 'x-user': 'lister' } });
  try {
    await worker.ready;
    client.send({ type: 'list', ref: 'l' });
    await client.next((m) => m.type === 'list' && m.ref === 'l', 'the list');

    relay.cut();
    // While the web process is away, another process starts a job of the list's user, and it completes.
    const quick = await worker.start({ name: 'quick' }, { as: asUser('lister') });
    await waitFor(async () => (await worker.status(quick.id))?.status === 'completed', 'the job to complete');
    relay.heal();

    await waitFor(
      () => client.messages.some((m) => m.type === 'list:changed' && m.jobs.some((job) => job.id === quick.id && job.status === 'completed')),
      'the list to hear of the job',
    );
  } finally {
    await client.close();
    await worker.close();
    await web.close();
    relay.close();
  }
});
