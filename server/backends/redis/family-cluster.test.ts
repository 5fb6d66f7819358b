/**
 * A family split across processes on one real redis-server: the parent runs
 * in this process (its only slot held by it), its children in a worker child
 * process. The parent's row aggregates them and hands their results, and a
 * cancel of the parent here aborts the children there. And the other way
 * round: the parent's process killed while its children run here.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { after, before, it } from 'node:test';
import { Redis } from 'ioredis';
import { createBackJob, type BackJobServer } from '../../backjob.js';
import { redis } from './backend.js';
import { startTestRedis, type TestRedis } from '../../testing/redis-server.js';
import { waitFor } from '../../testing/helpers.js';
import type { JobContext, JobRecord } from '../../types.js';

const CHILD = new URL('../../testing/redis-process.ts', import.meta.url).pathname;
const prefix = `family-cluster-${randomUUID()}`;

let redisServer: TestRedis;
let worker: ChildProcess;
let workerPid = 0;
let backjob: BackJobServer | undefined;
let marks: Redis;

/**
 * A worker process, started once the parent runs here: a worker up before
 * would as likely take the parent itself (it is queued like any job).
 */
async function startWorker(concurrency?: number): Promise<void> {
  worker = spawn(process.execPath, ['--import', 'tsx', CHILD, 'worker'], {
    env: { ...process.env, REDIS_URL: redisServer.url, BACKJOB_PREFIX: prefix, ...(concurrency ? { CONCURRENCY: String(concurrency) } : {}) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  workerPid = await new Promise<number>((resolve, reject) => {
    createInterface({ input: worker.stdout! }).on('line', (line) => line.startsWith('{"ready"') && resolve((JSON.parse(line) as { pid: number }).pid));
    worker.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
  });
}

async function stopWorker(): Promise<void> {
  if (worker.exitCode !== null || worker.signalCode !== null) return;
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  worker.kill('SIGKILL');
  await exited;
}

/** Starts a family here and, once its parent runs in this process, the worker its children go to. */
async function startFamily(ms: number): Promise<string> {
  const here = await parentHere();
  const { id } = await here.start({ name: 'family', params: { ms } });
  await waitFor(async () => (await here.list({ parent: id })).length === 2, 'the parent to spawn here');
  await startWorker();
  return id;
}

/** The shim of the first two tests: a worker with one slot, for the parent. */
async function parentHere(): Promise<BackJobServer> {
  if (backjob) return backjob;
  backjob = createBackJob({ backend: redis({ url: redisServer.url, prefix }), concurrency: 1 });
  // Defined here too (a spawn checks the name), but this process's one slot is the parent's.
  backjob.define('steps', () => ({ pid: process.pid }));
  backjob.define('family', async (job: JobContext, params: { ms: number }) => {
    const kids = [await job.spawn('steps', { steps: 4, ms: params.ms }), await job.spawn('steps', { steps: 4, ms: params.ms }, { weight: 3 })];
    return Promise.all(kids.map((kid) => kid.result()));
  });
  await backjob.ready;
  return backjob;
}

before(async () => {
  redisServer = await startTestRedis();
  marks = new Redis(redisServer.url);
});

after(async () => {
  await backjob?.close();
  marks?.disconnect();
  if (worker) await stopWorker();
  await redisServer?.stop();
});

async function ended(id: string): Promise<JobRecord> {
  return waitFor(async () => {
    const job = await backjob!.status(id);
    return job && ['completed', 'failed', 'canceled'].includes(job.status) ? job : null;
  }, `job ${id} to end`, 30_000);
}

it('aggregates children run by another process on the parent, and hands their results', { timeout: 60_000 }, async () => {
  const id = await startFamily(50);
  const midway = await waitFor(async () => {
    const job = await backjob!.status(id);
    return job?.children?.some((c) => c.status === 'running' && (c.progress ?? 0) > 0) ? job : null;
  }, 'a child to progress on the parent');
  assert.ok((midway.progress ?? 0) > 0 && (midway.progress ?? 0) < 100);
  const parent = await ended(id);
  assert.equal(parent.status, 'completed');
  assert.deepEqual(parent.result, [{ pid: workerPid }, { pid: workerPid }]);
  assert.deepEqual(parent.children?.map((c) => [c.status, c.weight]), [['completed', 1], ['completed', 3]]);
  assert.equal(parent.progress, 100);
});

it('cancels children running in another process when the parent is canceled here', { timeout: 60_000 }, async () => {
  await stopWorker();
  const id = await startFamily(60_000);
  const kids = await waitFor(async () => {
    const list = await backjob!.list({ parent: id, status: 'running' });
    return list.length === 2 ? list : null;
  }, 'both children to run in the worker');
  assert.equal(await backjob!.cancel(id), true);
  for (const kid of kids) {
    assert.equal((await ended(kid.id)).status, 'canceled');
    const reason = await waitFor(() => marks.get(`${prefix}:test:aborted:${kid.id}`), 'the worker to abort the child');
    assert.match(reason, /parent canceled/);
  }
  // The next test wants no worker in this process but its own.
  await backjob!.close();
  backjob = undefined;
});

it('fails the parent as worker lost when its process dies, and cancels its children running in another process', { timeout: 120_000 }, async () => {
  await stopWorker();
  // This process (busy with nothing) must not take the parent: the worker, with one slot, takes it.
  const web = createBackJob({ backend: redis({ url: redisServer.url, prefix }), worker: false });
  web.define('family', () => undefined);
  await web.ready;
  await startWorker(1);
  let childWorker: BackJobServer | undefined;
  try {
    const { id } = await web.start({ name: 'family', params: { ms: 60_000 } });
    await waitFor(async () => (await web.list({ parent: id })).length === 2, 'the parent to spawn in the worker');
    // The worker's one slot is the parent's: its children wait for another worker, which is this process.
    const aborted: string[] = [];
    childWorker = createBackJob({ backend: redis({ url: redisServer.url, prefix, lockDuration: 5_000, stalledInterval: 1_000 }), concurrency: 4 });
    childWorker.define('family', () => 'must not run again');
    childWorker.define('steps', (job: JobContext) => new Promise<void>((resolve) => job.signal.addEventListener('abort', () => {
      aborted.push(String((job.signal.reason as Error).message));
      resolve();
    })));
    await childWorker.ready;
    await waitFor(async () => (await web.list({ parent: id, status: 'running' })).length === 2, 'the children to run here');
    await stopWorker();
    const parent = await waitFor(async () => {
      const job = await web.status(id);
      return job?.status === 'failed' ? job : null;
    }, 'the parent to be failed as lost', 75_000);
    assert.equal(parent.errorCode, 'BACKJOB_ERR_WORKER_LOST');
    for (const kid of await web.list({ parent: id })) {
      const ended = await waitFor(async () => {
        const job = await web.status(kid.id);
        return job?.status === 'canceled' ? job : null;
      }, 'the children to be canceled');
      assert.equal(ended.error, 'parent failed');
    }
    await waitFor(() => aborted.length === 2, 'both children here to hear of it');
    assert.deepEqual(aborted, ['parent failed', 'parent failed']);
  } finally {
    await childWorker?.close();
    await web.close();
  }
});
