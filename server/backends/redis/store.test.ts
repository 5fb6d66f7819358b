import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { FairPick, fairPrefix } from './fair.js';
import { RedisJobStore } from './store.js';
import { startTestRedis, type TestRedis } from '../../testing/redis-server.js';
import { runStoreContract, sampleJob } from '../../testing/store-contract.js';

let server: TestRedis;
before(async () => {
  server = await startTestRedis();
});
after(async () => {
  await server?.stop();
});

runStoreContract('redis', async () => {
  const connection = new Redis(server.url, { maxRetriesPerRequest: null });
  // A fresh prefix per test is an empty store without flushing anything.
  const store = new RedisJobStore(connection, `test-${randomUUID()}`);
  return {
    store,
    async cleanup() {
      await store.close();
      await connection.quit();
    },
  };
});

/** Two stores (two processes) on one prefix, each on its own connection, with the fair queue of the first. */
async function twoStores() {
  const prefix = `test-${randomUUID()}`;
  const connections = [0, 1].map(() => new Redis(server.url, { maxRetriesPerRequest: null }));
  const [a, b] = connections.map((connection) => new RedisJobStore(connection, prefix, { fairPrefix: fairPrefix(`${prefix}:`) }));
  const pick = new FairPick(connections[0]!, `${prefix}:`, a!.keys.row(''));
  return {
    a: a!,
    b: b!,
    pick,
    async close() {
      await Promise.all(connections.map((connection) => connection.quit()));
    },
  };
}

test('a create lists its job for the fair queue in the same script, and the claim hands over its row', async () => {
  const { a, pick, close } = await twoStores();
  try {
    const { job } = await a.create(sampleJob({ queueKey: 'user:alice' }));
    const claimed = await pick.claim('worker-1', 5, 30_000, []);
    assert.deepEqual(claimed.jobs.map((c) => c.id), [job.id], 'listed by the create alone: no enqueue call');
    assert.deepEqual(JSON.parse(claimed.jobs[0]!.row!), await a.get(job.id), 'the row as stored');
    assert.equal(claimed.jobs[0]!.resumed, false);
    assert.deepEqual((await pick.claim('worker-2', 5, 30_000, [])).jobs, [], 'listed once');
    const runAt = Date.now() + 60_000;
    await a.create(sampleJob({ runAt }));
    const early = await pick.claim('worker-2', 5, 30_000, []);
    assert.deepEqual(early.jobs, [], 'a delayed job is listed as delayed: not due yet');
    assert.equal(early.nextDue, runAt, 'and the claim says when it is due');
  } finally {
    await close();
  }
});

test('a row handed over by the pick that another process has since ended cannot start the job: ended is final', async () => {
  const { a, b, pick, close } = await twoStores();
  try {
    const { job } = await a.create(sampleJob());
    const picked = (await pick.claim('worker-1', 1, 30_000, [])).jobs[0]!;
    // Canceled by another process after the pick read the row, before the start is written.
    await b.append([{ jobId: job.id, events: [{ type: 'job:canceled', reason: 'canceled' }] }]);
    a.knowRow(picked.row!);
    const [started] = await a.append([{ jobId: job.id, events: [{ type: 'job:start', attempt: 1 }] }]);
    assert.deepEqual(started!.events, [], 'the start is dropped');
    assert.equal(started!.job!.status, 'canceled');
    assert.deepEqual((await a.eventsAfter(job.id, 0, 10)).map((event) => event.type), ['job:created', 'job:canceled']);
  } finally {
    await close();
  }
});
