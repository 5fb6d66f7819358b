/**
 * The core when its surroundings misbehave: a store that fails writes for a
 * while, and an app that defines its handlers only after BackJob started.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { memory } from '../backends/local/memory.js';
import { sqlite } from '../backends/local/sqlite.js';
import { createBackJob } from '../backjob.js';
import { tempDir, waitFor } from '../testing/helpers.js';

const KEY = 'core-faults-key-0123456789abcdef';

/**
 * A shim on a memory store that refuses the first `times` writes carrying an
 * event of type `refusedType` (a double, because no real store can be made to
 * fail on cue), one slot, a `quick` job, and the errors it reports.
 */
function withRefusedWrites(refusedType: string, times: number) {
  const backend = memory();
  const append = backend.store.append.bind(backend.store);
  const refusals = { count: 0 };
  backend.store.append = async (batch) => {
    if (refusals.count < times && batch.some((entry) => entry.events.some((event) => event.type === refusedType))) {
      refusals.count++;
      throw new Error('store unavailable');
    }
    return append(batch);
  };
  const backjob = createBackJob({ backend, key: KEY, concurrency: 1 });
  const errors: Error[] = [];
  backjob.on('error', (error) => errors.push(error));
  backjob.define('quick', () => 'done');
  return { backjob, refusals, errors };
}

test("a job's end that fails to be written is retried until stored: the job does not stay running, nor hold its slot", async () => {
  const { backjob, refusals, errors } = withRefusedWrites('job:completed', 2);
  try {
    const first = await backjob.start({ name: 'quick' }, { merge: false });
    const second = await backjob.start({ name: 'quick' }, { merge: false });
    const ended = await waitFor(async () => {
      const job = await backjob.status(first.id);
      return job?.status === 'completed' ? job : null;
    }, 'the first job to complete');
    assert.equal(ended.result, 'done');
    assert.equal(refusals.count, 2);
    assert.ok(errors.length >= 2, 'each failed write is reported');
    // With one slot, the second job runs only once the first released it.
    await waitFor(async () => (await backjob.status(second.id))?.status === 'completed', 'the second job to complete');
  } finally {
    await backjob.close();
  }
});

test("a job whose start fails to be written is started again later, not left waiting until a restart", async () => {
  const { backjob, refusals, errors } = withRefusedWrites('job:start', 2);
  try {
    const first = await backjob.start({ name: 'quick' }, { merge: false });
    const second = await backjob.start({ name: 'quick' }, { merge: false });
    for (const { id } of [first, second]) {
      const job = await waitFor(async () => {
        const current = await backjob.status(id);
        return current?.status === 'completed' ? current : null;
      }, 'both jobs to complete');
      assert.equal(job.result, 'done');
      assert.equal(job.attempt, 1, 'started once: the refused starts left no trace');
    }
    assert.equal(refusals.count, 2);
    assert.ok(errors.some((error) => /store unavailable/.test(error.message)), 'the failures are reported');
  } finally {
    await backjob.close();
  }
});

test('a job recovered at start-up waits for a handler the app defines late (after an await), instead of failing as unknown', async () => {
  const temp = tempDir();
  const file = join(temp.dir, 'jobs.db');
  try {
    const before = createBackJob({ backend: sqlite({ file }), key: KEY });
    before.define('report', () => 'first run');
    const { id } = await before.start({ name: 'report' }, { delay: 0.2 });
    await before.close(); // the job is still waiting when the process goes away

    const after = createBackJob({ backend: sqlite({ file }), key: KEY });
    try {
      await after.ready;
      await new Promise((resolve) => setTimeout(resolve, 600)); // job modules loading; the job is due meanwhile
      after.define('report', () => 'after restart');
      const job = await waitFor(async () => {
        const current = await after.status(id);
        return current && ['completed', 'failed'].includes(current.status) ? current : null;
      }, 'the recovered job to end');
      assert.equal(job.status, 'completed', `failed: ${job.error}`);
      assert.equal(job.result, 'after restart');
    } finally {
      await after.close();
    }
  } finally {
    temp.remove();
  }
});

test('close() while a recovered job waits for its definition ends the wait: nothing keeps the process up or writes after close', async () => {
  const temp = tempDir();
  const file = join(temp.dir, 'jobs.db');
  const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
  try {
    const before = createBackJob({ backend: sqlite({ file }), key: KEY, worker: false });
    before.define('report', () => 'first run');
    const { id } = await before.start({ name: 'report' }); // left waiting: this process runs nothing
    await before.close();

    const idle = timers();
    const waiting = createBackJob({ backend: sqlite({ file }), key: KEY });
    const errors: Error[] = [];
    waiting.on('error', (error) => errors.push(error));
    await waiting.ready; // the job is queued, and waits for define('report'), which never comes
    await new Promise((resolve) => setTimeout(resolve, 100));
    await waiting.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(timers(), idle, 'no timer of the closed shim keeps the process alive');
    assert.deepEqual(errors.map(String), []);

    const after = createBackJob({ backend: sqlite({ file }), key: KEY });
    after.define('report', () => 'after restart');
    try {
      const job = await waitFor(async () => ((await after.status(id))?.status === 'completed' ? after.status(id) : null), 'the job to run at the next start-up');
      assert.equal(job!.result, 'after restart');
    } finally {
      await after.close();
    }
  } finally {
    temp.remove();
  }
});

test('progress still waiting to be written is merged into the next report (latest wins); log lines between them are kept in order', async () => {
  const backjob = createBackJob({ backend: memory(), key: KEY });
  backjob.define('flood', async (job) => {
    for (let i = 1; i <= 1_000; i++) job.update({ progress: i / 10, ...(i % 250 === 0 ? { text: `step ${i}` } : {}) });
    job.log('halfway');
    job.update(60);
    job.update({ text: 'almost' });
    await job.flush();
  });
  try {
    const { id } = await backjob.start({ name: 'flood' });
    await waitFor(async () => (await backjob.status(id))?.status === 'completed', 'the flood to complete');
    const events = await backjob.host.backend.store.eventsAfter(id, 0, 10_000);
    const middle = events.filter((e) => e.type === 'job:progress' || e.type === 'job:log');
    assert.deepEqual(
      middle.map(({ type, ...rest }) => (type === 'job:log' ? { line: (rest as { line: string }).line } : { progress: (rest as { progress?: number }).progress, text: (rest as { text?: string }).text })),
      [{ progress: 100, text: 'step 1000' }, { line: 'halfway' }, { progress: 60, text: 'almost' }],
    );
  } finally {
    await backjob.close();
  }
});
