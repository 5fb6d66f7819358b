/**
 * The queue is fair across owners, on each backend: jobs are taken
 * round-robin across queue keys (per user, per anonymous address, one for the
 * app's own starts), so one owner's flood delays another owner's job by about
 * one job per slot, not by the whole flood. A strict first-in-first-out queue
 * fails these tests.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { createBackJob } from '../index.js';
import { redis } from '../backends/redis/backend.js';
import { everyBackend } from '../testing/backends.js';
import { startTestApp } from '../testing/http-test-app.js';
import { waitFor } from '../testing/helpers.js';
import type { BackJob, JobRecord } from '../types.js';

const { backends: BACKENDS, redisUrl } = everyBackend('fair');

const FLOOD = 200;

async function post(url: string, params: unknown, cookie?: string): Promise<string> {
  const res = await fetch(`${url}/backjob/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
    body: JSON.stringify({ name: 'work', params }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

/** Waits until job `id` started, and returns it. */
function started(backjob: BackJob, id: string): Promise<JobRecord> {
  return waitFor(async () => {
    const job = await backjob.status(id);
    return job?.startedAt !== undefined ? job : null;
  }, `job ${id} to start`);
}

/** Of `flood`, the jobs that started at or after `since` and no later than `until`. */
async function startedBetween(backjob: BackJob, flood: string[], since: number, until: number): Promise<number> {
  const times = await Promise.all(flood.map(async (id) => (await backjob.status(id))?.startedAt));
  return times.filter((at) => at !== undefined && at >= since && at <= until).length;
}

for (const [kind, backend] of Object.entries(BACKENDS)) {
  describe(`fair queue (${kind})`, () => {
    /** A backjob that runs nothing itself, for driving its queue by hand, and a way to add jobs to it. */
    async function bareQueue() {
      const backjob = createBackJob({ backend: backend(), worker: false });
      await backjob.ready;
      const add = async (label: string, queueKey: string, delayMs = 0) => {
        const { job } = await backjob.host.backend.store.create({
          id: `${label}-${randomUUID()}`, name: 'work', kind: 'handler', params: { label }, owner: null, queueKey,
          mergeKey: null, runAt: Date.now() + delayMs, retriesLeft: 0, timeoutMs: 0, errorTimeout: 0, runner: null, createdAt: Date.now(),
        });
        await backjob.host.backend.queue.enqueue(job);
        return job.id;
      };
      return { backjob, queue: backjob.host.backend.queue, add };
    }

    it('takes jobs in rounds across owners, first in first out within each, and skips a canceled one', async () => {
      const { backjob, queue, add } = await bareQueue();
      const ran: string[] = [];
      try {
        // Queued before anything runs, so the order they are taken in is all the queue's doing.
        for (const [label, key] of [['a1', 'addr:a'], ['a2', 'addr:a'], ['a3', 'addr:a'], ['b1', 'user:b'], ['c1', 'app'], ['b2', 'user:b'], ['b3', 'user:b']] as const) {
          const id = await add(label, key);
          if (label === 'b2') await queue.remove(id);
        }
        queue.process(async (jobId) => {
          ran.push(jobId.split('-')[0]!);
          return 'done';
        }, 1);
        await waitFor(() => ran.length === 6, 'six jobs to be taken');
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.deepEqual(ran, ['a1', 'b1', 'c1', 'a2', 'b3', 'a3']);
      } finally {
        await backjob.close();
      }
    });

    it('gives an owner that empties and refills its queue no second turn in a round', async () => {
      const { backjob, queue, add } = await bareQueue();
      const ran: string[] = [];
      try {
        for (let i = 1; i <= 4; i++) await add(`a${i}`, 'addr:a');
        await add('x1', 'user:x');
        queue.process(async (jobId) => {
          const label = jobId.split('-')[0]!;
          ran.push(label);
          // x starts its next job as soon as one of its jobs runs, so its queue is never empty for long.
          if (label.startsWith('x') && ran.length < 8) await add(`x${Number(label.slice(1)) + 1}`, 'user:x');
          return 'done';
        }, 1);
        await waitFor(() => ran.length >= 8, 'eight jobs to be taken');
        assert.deepEqual(ran.slice(0, 8), ['a1', 'x1', 'a2', 'x2', 'a3', 'x3', 'a4', 'x4']);
      } finally {
        await backjob.close();
      }
    });

    it('takes a delayed job once it is due, never a canceled one, and runs each job once', async () => {
      const { backjob, queue, add } = await bareQueue();
      const ran: Array<[label: string, at: number]> = [];
      try {
        const queuedAt = Date.now();
        await add('d1', 'addr:a', 400);
        const canceled = await add('d2', 'addr:a', 400);
        await queue.remove(canceled);
        await add('x1', 'user:x');
        queue.process(async (jobId) => {
          ran.push([jobId.split('-')[0]!, Date.now()]);
          return 'done';
        }, 1);
        await waitFor(() => ran.length === 2, 'the due and the delayed job to be taken');
        await new Promise((resolve) => setTimeout(resolve, 600));
        assert.deepEqual(ran.map(([label]) => label), ['x1', 'd1'], 'the canceled one never runs, and nothing runs twice');
        assert.ok(ran[1]![1] - queuedAt >= 350, `the delayed job waited ${ran[1]![1] - queuedAt} ms`);
      } finally {
        await backjob.close();
      }
    });

    it("lets a signed-in user's job start after at most one job of an anonymous flood of 200", async () => {
      const app = await startTestApp({
        backend: backend(),
        concurrency: 1,
        maxWaitingPerOwner: 0, // the flood is over any quota: this is about the queue
        appRoutes: (_app, backjob) => {
          backjob.define('work', () => new Promise((resolve) => setTimeout(resolve, 5)), { launchable: true });
        },
      });
      try {
        const flood: string[] = [];
        for (let i = 0; i < FLOOD; i += 20) flood.push(...(await Promise.all(Array.from({ length: 20 }, (_, j) => post(app.url, { i: i + j })))));
        const mine = await started(app.backjob, await post(app.url, { mine: true }, 'user=bob'));
        const overtaking = await startedBetween(app.backjob, flood, mine.createdAt, mine.startedAt!);
        assert.ok(overtaking <= 1, `${overtaking} of the flood's jobs started between the user's start and the user's job`);
        const after = await startedBetween(app.backjob, flood, mine.startedAt! + 1, Infinity);
        assert.ok(after > 0 || (await app.backjob.list({ status: 'waiting' })).length > 0, 'the flood was still queued when the user’s job started');
      } finally {
        await app.close();
      }
    });

    it("gives the app's own starts (no request) one turn between them, so a loop of them does not starve a user", async () => {
      const app = await startTestApp({
        backend: backend(),
        concurrency: 1,
        merge: false,
        appRoutes: (_app, backjob) => {
          backjob.define('work', () => new Promise((resolve) => setTimeout(resolve, 5)), { launchable: true });
        },
      });
      try {
        const loop: string[] = [];
        for (let i = 0; i < FLOOD; i++) loop.push((await app.backjob.start({ name: 'work', params: { i } })).id);
        const mine = await started(app.backjob, await post(app.url, { mine: true }, 'user=bob'));
        const overtaking = await startedBetween(app.backjob, loop, mine.createdAt, mine.startedAt!);
        assert.ok(overtaking <= 1, `${overtaking} of the loop's jobs started between the user's start and the user's job`);
      } finally {
        await app.close();
      }
    });
  });
}

describe('fair queue (redis, two workers)', () => {
  it('keeps the bound at one job per slot when several worker processes take turns', async () => {
    const prefix = `fair-workers-${randomUUID()}`;
    const key = 'fair-workers-key-0123456789abcdef';
    const define = (backjob: BackJob) => backjob.define('work', () => new Promise((resolve) => setTimeout(resolve, 5)), { launchable: true });
    const web = await startTestApp({ backend: redis({ url: redisUrl(), prefix }), key, worker: false, maxWaitingPerOwner: 0, appRoutes: (_app, b) => define(b) });
    const workers = [0, 1].map(() => createBackJob({ backend: redis({ url: redisUrl(), prefix }), key, concurrency: 1 }));
    workers.forEach(define);
    try {
      await Promise.all(workers.map((w) => w.ready));
      const flood: string[] = [];
      for (let i = 0; i < FLOOD; i += 20) flood.push(...(await Promise.all(Array.from({ length: 20 }, (_, j) => post(web.url, { i: i + j })))));
      const mine = await started(web.backjob, await post(web.url, { mine: true }, 'user=bob'));
      const overtaking = await startedBetween(web.backjob, flood, mine.createdAt, mine.startedAt!);
      // Counted by start time, so a job a slot had already picked when the user's job was created (its start
      // landing just after) counts too: one such per slot, plus the other slot's turn while one takes the user's.
      assert.ok(overtaking <= 3, `${overtaking} of the flood's jobs started between the user's start and the user's job (two slots)`);
      const runners = new Set((await web.backjob.list({ status: 'completed' })).map((job) => job.runner ?? 'gone'));
      assert.ok(runners.size >= 1);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
      await web.close();
    }
  });
});
