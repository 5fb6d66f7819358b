/** The fair queue's scripts on a real Redis: claims, leases, the sweep, hand-backs, the upgrade from turns. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { FairPick, fairPrefix } from './fair.js';
import { RedisJobStore } from './store.js';
import { startTestRedis, type TestRedis } from '../../testing/redis-server.js';
import { sampleJob } from '../../testing/store-contract.js';
import type { NewJob } from '../../types.js';

let server: TestRedis;
before(async () => {
  server = await startTestRedis();
});
after(async () => {
  await server?.stop();
});

/** A store listing its creates for a fair queue, on a fresh prefix. */
async function queue() {
  const prefix = `fair-${randomUUID()}`;
  const connection = new Redis(server.url, { maxRetriesPerRequest: null });
  const store = new RedisJobStore(connection, prefix, { fairPrefix: fairPrefix(`${prefix}:`) });
  const fair = new FairPick(connection, `${prefix}:`, store.keys.row(''));
  const create = async (overrides: Partial<NewJob> = {}) => (await store.create(sampleJob(overrides))).job.id;
  const ids = async (worker: string, count: number, finished: string[] = []) => (await fair.claim(worker, count, 30_000, finished)).jobs.map((job) => job.id);
  return {
    prefix,
    connection,
    store,
    fair,
    create,
    ids,
    async close() {
      await store.close();
      await connection.quit();
    },
  };
}

test('claims round-robin across queue keys, several at once, each job once', async () => {
  const q = await queue();
  try {
    const a = [await q.create({ owner: 'a' }), await q.create({ owner: 'a' }), await q.create({ owner: 'a' })];
    const b = [await q.create({ owner: 'b' }), await q.create({ owner: 'b' })];
    const c = await q.create({ owner: 'c' });
    assert.deepEqual(await q.ids('w1', 4), [a[0], b[0], c, a[1]], 'one of each key per round, first in first out within a key');
    assert.deepEqual(await q.ids('w2', 4), [b[1], a[2]], 'the rest, to another worker; nothing twice');
    assert.deepEqual(await q.ids('w1', 4), []);
  } finally {
    await q.close();
  }
});

test("a batch's own job is never listed: it does no work, so no worker spends a claim on it", async () => {
  const q = await queue();
  try {
    const batch = await q.create({ batch: true, members: 2 });
    const member = await q.create({ parent: batch, root: batch, spawn: 0 });
    assert.deepEqual(await q.ids('w1', 4), [member], 'only the member');
    assert.equal(await q.connection.hget(`${fairPrefix(`${q.prefix}:`)}keyOf`, batch), null);
  } finally {
    await q.close();
  }
});

test('a lease that lapses is swept back, ahead of its key, and its next claim says the job was lost', async () => {
  const q = await queue();
  try {
    const first = await q.create();
    const second = await q.create();
    // Leases of a second: long enough that a busy CI machine's stall between claim and sweep does not lapse one early.
    const claimed = await q.fair.claim('dying', 1, 1_000, []);
    assert.deepEqual(claimed.jobs.map((job) => [job.id, job.resumed]), [[first, false]]);
    assert.equal(await q.fair.sweep(), 0, 'not lapsed yet');
    await new Promise((r) => setTimeout(r, 1_050));
    assert.equal(await q.fair.sweep(), 1);
    const again = await q.fair.claim('other', 2, 30_000, []);
    assert.deepEqual(again.jobs.map((job) => [job.id, job.resumed]), [[first, true], [second, false]], 'the lost job first, and marked');
    // The dead worker's late release touches nothing: the lease is another worker's now.
    await q.fair.claim('dying', 0, 30_000, [first]);
    assert.equal(await q.connection.hget(`${fairPrefix(`${q.prefix}:`)}holder`, first), 'other');
  } finally {
    await q.close();
  }
});

test('renewal keeps a lease from lapsing, only for the worker that holds it', async () => {
  const q = await queue();
  try {
    const id = await q.create();
    await q.fair.claim('w1', 1, 1_000, []);
    const start = Date.now();
    while (Date.now() - start < 1_500) {
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(await q.fair.renew('w1', [id], 1_000), []);
      assert.equal(await q.fair.sweep(), 0, 'renewed in time');
    }
    assert.deepEqual(await q.fair.renew('w2', [id], 1_000), [id], 'not w2’s to renew');
    await new Promise((r) => setTimeout(r, 1_050));
    assert.equal(await q.fair.sweep(), 1);
  } finally {
    await q.close();
  }
});

test('a finished run releases its lease and unlists the job for good; a released job can be enqueued again', async () => {
  const q = await queue();
  try {
    const id = await q.create();
    assert.deepEqual(await q.ids('w1', 1), [id]);
    assert.deepEqual(await q.ids('w1', 1, [id]), [], 'released in the same call as the next claim');
    const key = fairPrefix(`${q.prefix}:`);
    assert.equal(await q.connection.zcard(`${key}leases`), 0);
    assert.equal(await q.connection.hexists(`${key}keyOf`, id), 0);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(await q.fair.sweep(), 0);
    const job = (await q.store.get(id))!;
    assert.equal(await q.fair.enqueue({ id, queueKey: 'user:alice', runAt: job.runAt }, { bullJob: `${q.prefix}:bull:jobs:${id}`, row: q.store.keys.row(id) }), 1);
    assert.deepEqual(await q.ids('w1', 1), [id]);
  } finally {
    await q.close();
  }
});

test('delayed jobs are claimed once due, and a claim short of work says when the next one is', async () => {
  const q = await queue();
  try {
    const soon = Date.now() + 1_000;
    const later = Date.now() + 60_000;
    const delayed = await q.create({ runAt: later });
    const due = await q.create({ runAt: soon });
    const now = await q.fair.claim('w1', 2, 30_000, []);
    assert.deepEqual(now.jobs, []);
    assert.equal(now.nextDue, soon);
    await new Promise((r) => setTimeout(r, soon - Date.now() + 10));
    const then = await q.fair.claim('w1', 2, 30_000, []);
    assert.deepEqual(then.jobs.map((job) => job.id), [due]);
    assert.equal(then.nextDue, later);
    assert.ok(delayed);
    const full = await q.fair.claim('w1', 0, 30_000, []);
    assert.equal(full.nextDue, null, 'a claim that asked for nothing is not short of work');
  } finally {
    await q.close();
  }
});

test('a hand-back releases the lease and lists the job again after its delay, marked as taken before', async () => {
  const q = await queue();
  try {
    const id = await q.create();
    await q.ids('closing', 1);
    assert.equal(await q.fair.release('someone-else', [id], Date.now()), 0, 'only the holder hands back');
    const due = Date.now() + 1_000;
    assert.equal(await q.fair.release('closing', [id], due), 1);
    assert.deepEqual(await q.ids('w2', 1), [], 'not before its delay');
    await new Promise((r) => setTimeout(r, due - Date.now() + 20));
    const claimed = await q.fair.claim('w2', 1, 30_000, []);
    assert.deepEqual(claimed.jobs.map((job) => [job.id, job.resumed]), [[id, true]]);
  } finally {
    await q.close();
  }
});

test('a cancel unlists a waiting job (and one swept back), never a claimed one', async () => {
  const q = await queue();
  try {
    const waiting = await q.create();
    const delayed = await q.create({ runAt: Date.now() + 60_000 });
    const bull = (id: string) => `${q.prefix}:bull:jobs:${id}`;
    assert.equal(await q.fair.remove(waiting, bull(waiting)), 'removed');
    assert.equal(await q.fair.remove(delayed, bull(delayed)), 'removed');
    const running = await q.create();
    await q.fair.claim('w1', 1, 30, []);
    assert.equal(await q.fair.remove(running, bull(running)), 'taken');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await q.fair.sweep(), 1);
    assert.equal(await q.fair.remove(running, bull(running)), 'removed', 'swept back: waiting again');
    assert.deepEqual(await q.ids('w1', 5), [], 'nothing left');
    assert.equal(await q.connection.hlen(`${fairPrefix(`${q.prefix}:`)}lost`), 0, 'its lost mark went with it');
  } finally {
    await q.close();
  }
});

test('upgrade: a job a turn of the earlier version had taken gets a lease, and comes back as lost if its run never ends', async () => {
  const q = await queue();
  try {
    const taken = await q.create();
    const listed = await q.create();
    const key = fairPrefix(`${q.prefix}:`);
    // What the earlier version left: its pick took `taken` (unlisted, remembered under its turn).
    assert.deepEqual(await q.ids('turn-era-pick', 1), [taken]);
    await q.connection.multi().hdel(`${key}holder`, taken).zrem(`${key}leases`, taken).hset(`${key}picks`, 'bullmq-turn-7', taken).exec();
    assert.equal(await q.fair.adopt('turn-era', 50), 1);
    assert.equal(await q.connection.exists(`${key}picks`), 0);
    assert.deepEqual(await q.ids('w1', 1), [listed], 'the listed one is claimed as any other');
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(await q.fair.sweep(), 1);
    const claimed = await q.fair.claim('w1', 1, 30_000, []);
    assert.deepEqual(claimed.jobs.map((job) => [job.id, job.resumed]), [[taken, true]]);
  } finally {
    await q.close();
  }
});

test('a create leases its job to the creating worker at once when it is what a claim would take next, and only then', async () => {
  const q = await queue();
  const outcomes: string[] = [];
  const local = new RedisJobStore(q.connection, q.prefix, {
    fairPrefix: fairPrefix(`${q.prefix}:`),
    hook: { lease: () => ({ worker: 'local', expiry: Date.now() + 30_000 }), settled: (_job, _lease, outcome) => void outcomes.push(outcome) },
  });
  const holder = `${fairPrefix(`${q.prefix}:`)}holder`;
  try {
    const first = (await local.create(sampleJob({ owner: 'a' }))).job.id;
    assert.deepEqual(outcomes, ['leased'], 'nothing else due: the creating worker takes it');
    assert.equal(await q.connection.hget(holder, first), 'local');
    assert.deepEqual(await q.ids('other', 5), [], 'no other worker gets it');
    const waiting = await q.create({ owner: 'b' }); // listed: due, unclaimed
    const second = (await local.create(sampleJob({ owner: 'c' }))).job.id;
    const delayed = (await local.create(sampleJob({ owner: 'c', runAt: Date.now() + 60_000 }))).job.id;
    assert.deepEqual(outcomes, ['leased', 'listed', 'listed'], 'another job is due, or this one is not: listed for whoever claims next');
    assert.deepEqual(await q.ids('other', 5), [waiting, second], 'in the fair order');
    assert.equal(await q.connection.hget(holder, delayed), null);
    // The lease is a lease like any: released by its holder's next claim, or swept back if it lapses.
    assert.deepEqual(await q.ids('local', 0, [first]), []);
    assert.equal(await q.connection.hget(holder, first), null);
  } finally {
    await local.close();
    await q.close();
  }
});
