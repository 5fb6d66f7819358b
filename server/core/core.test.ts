import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { memory } from '../backends/local/memory.js';
import { toSnapshot } from './records.js';
import { sqlite } from '../backends/local/sqlite.js';
import { BackJobServer, createBackJob } from '../backjob.js';
import { BackjobError } from '../errors.js';
import { gate, tempDir, waitFor } from '../testing/helpers.js';
import type { BackJobOptions, JobContext, JobEvent, JobRecord } from '../types.js';

const KEY = 'core-test-key-0123456789abcdef';
const open: BackJobServer[] = [];
const dirs: Array<{ remove(): void }> = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
  for (const dir of dirs.splice(0)) dir.remove();
});

/** A shim on the memory backend (unless `backend` is given), closed after the test. */
function make(options: BackJobOptions = {}): BackJobServer {
  const backjob = createBackJob({ backend: memory(), key: KEY, ...options });
  open.push(backjob);
  return backjob;
}

/** A handler that runs until its signal aborts (so `close()` needs no grace period). */
function untilAborted(job: JobContext): Promise<void> {
  return new Promise((resolve) => {
    if (job.signal.aborted) resolve();
    job.signal.addEventListener('abort', () => resolve());
  });
}

function sqliteFile(): string {
  const temp = tempDir();
  dirs.push(temp);
  return join(temp.dir, 'jobs.db');
}

async function ended(backjob: BackJobServer, id: string): Promise<JobRecord> {
  return waitFor(async () => {
    const job = await backjob.status(id);
    return job && ['completed', 'failed', 'canceled'].includes(job.status) ? job : null;
  }, `job ${id} to end`, 15_000);
}

async function events(backjob: BackJobServer, id: string): Promise<JobEvent[]> {
  return backjob.host.backend.store.eventsAfter(id, 0, 100_000);
}

describe('lifecycle', () => {
  it('runs a handler, records every change in order, and completes with its return value', async () => {
    const backjob = make();
    backjob.define('count', async (job: JobContext, params: { to: number }) => {
      job.update({ progress: 10, text: 'Counting' });
      for (let i = 1; i <= params.to; i++) job.log(`line ${i}`);
      job.increment(15);
      await job.flush();
      return { counted: params.to };
    });
    const heard: Array<[string, string]> = [];
    for (const name of ['job:start', 'job:progress', 'job:log', 'job:completed'] as const) {
      backjob.on(name, (job, event) => heard.push([name, `${event.seq}:${job.status}`]));
    }
    const durableAtEnd = gate<JobRecord | null>();
    backjob.once('job:completed', (job) => {
      void backjob.status(job.id).then((stored) => durableAtEnd.open(stored));
    });

    const { id, token, merged } = await backjob.start({ name: 'count', params: { to: 3 } });
    assert.equal(merged, false);
    assert.equal(token, backjob.tokenFor(id));
    const job = await ended(backjob, id);
    assert.equal(job.status, 'completed');
    assert.deepEqual(job.result, { counted: 3 });
    assert.equal(job.progress, 100);
    assert.equal(job.text, 'Counting');
    assert.equal(job.logLines, 3);
    assert.equal(job.attempt, 1);
    assert.equal(job.runner, null);
    assert.equal((await durableAtEnd.promise)?.status, 'completed', 'the end is stored before job:completed fires');

    const stored = await events(backjob, id);
    assert.deepEqual(
      stored.map((e) => e.seq),
      stored.map((_, i) => i + 1),
    );
    assert.deepEqual(
      stored.map((e) => e.type),
      ['job:created', 'job:start', 'job:progress', 'job:log', 'job:log', 'job:log', 'job:progress', 'job:completed'],
    );
    assert.deepEqual(stored[6], { type: 'job:progress', progress: 25, jobId: id, seq: 7, at: stored[6]!.at });
    // Each event comes with the job as stored in its batch; the end comes after everything else.
    assert.deepEqual(heard, [
      ['job:start', '2:running'],
      ['job:progress', '3:running'],
      ['job:log', '4:running'],
      ['job:log', '5:running'],
      ['job:log', '6:running'],
      ['job:progress', '7:running'],
      ['job:completed', '8:completed'],
    ]);
  });

  for (const kind of ['sqlite', 'memory'] as const) {
    it(`a listener that changes the job or event it heard changes nothing stored or sent (${kind})`, async () => {
      const backjob = make({ backend: kind === 'sqlite' ? sqlite({ file: sqliteFile() }) : memory() });
      // An app redacting what it logs, in place.
      backjob.on('job:progress', (job, event) => {
        (job.params as { secret: string }).secret = '***';
        job.text = 'redacted';
        if (event.type === 'job:progress') event.text = 'redacted';
      });
      backjob.on('job:log', (job, event) => {
        if (event.type === 'job:log') event.line = 'redacted';
      });
      const step = gate();
      backjob.define('report', async (job) => {
        job.update({ progress: 10, text: 'one' });
        await job.flush();
        await step.promise;
        job.log('a line');
        job.update({ progress: 50 });
        await job.flush();
      });
      await backjob.ready;
      const published: JobEvent[] = [];
      const stop = backjob.host.backend.bus.subscribe((notice) => notice.type === 'events' && published.push(...notice.events));
      const { id } = await backjob.start({ name: 'report', params: { secret: 's3cret' } });
      await waitFor(async () => (await backjob.status(id))?.progress === 10, 'the first update stored');
      step.open();
      const job = await ended(backjob, id);
      stop();
      assert.deepEqual(job.params, { secret: 's3cret' }, 'the next append did not fold from the changed row');
      assert.equal(job.text, 'one');
      // The texts and lines of a job's events, in order.
      const said = (list: JobEvent[]) =>
        list.flatMap((e) => (e.jobId !== id ? [] : e.type === 'job:log' ? [e.line] : e.type === 'job:progress' && e.text !== undefined ? [e.text] : []));
      assert.deepEqual(said(await events(backjob, id)), ['one', 'a line']);
      assert.deepEqual(said(published), ['one', 'a line'], 'the watchers get the events as stored');
    });

    it(`a handler that changes its params in place changes nothing stored (${kind})`, async () => {
      const backjob = make({ backend: kind === 'sqlite' ? sqlite({ file: sqliteFile() }) : memory() });
      let same = false;
      backjob.define('page', async (job, params: { page: number; seen: string[] }) => {
        same = params === job.params;
        params.page += 1;
        params.seen.push('x');
        job.update({ progress: 50 });
        await job.flush();
        job.log('more');
      });
      const { id } = await backjob.start({ name: 'page', params: { page: 1, seen: [] } });
      const job = await ended(backjob, id);
      assert.deepEqual(job.params, { page: 1, seen: [] }, 'a retry would run with what was started');
      assert.ok(same, 'the argument and `job.params` are one object');
    });
  }

  it('jobs started in a loop that reuses one params object get the params of their own call, children too', async () => {
    const backjob = make({ backend: sqlite({ file: sqliteFile() }) });
    const pages: number[] = [];
    backjob.define('page', async (_job, params: { page: number }) => {
      pages.push(params.page);
    });
    backjob.define('parent', async (job) => {
      const params = { page: 10 };
      const spawned = [];
      for (let i = 10; i < 13; i++) {
        params.page = i;
        spawned.push(job.spawn('page', params));
      }
      await Promise.all((await Promise.all(spawned)).map((child) => child.result()));
    });
    const params = { page: 0, seen: [] as number[] };
    const started = [];
    for (let i = 0; i < 3; i++) {
      params.page = i;
      params.seen.push(i);
      // Not awaited: the next call changes the object while this one still waits for the store.
      started.push(backjob.start({ name: 'page', params }));
    }
    const ids = (await Promise.all(started)).map((s) => s.id);
    assert.equal(new Set(ids).size, 3, 'three jobs, not one merged');
    const jobs = await Promise.all(ids.map((id) => ended(backjob, id)));
    assert.deepEqual(jobs.map((job) => job.params), [0, 1, 2].map((i) => ({ page: i, seen: [0, 1, 2].slice(0, i + 1) })));
    const { id } = await backjob.start({ name: 'parent' });
    assert.equal((await ended(backjob, id)).status, 'completed');
    assert.deepEqual(pages.sort((a, b) => a - b), [0, 1, 2, 10, 11, 12]);
  });

  it('stores the result as it was at finish(), whatever the handler does to the object afterwards', async () => {
    const backjob = make({ backend: sqlite({ file: sqliteFile() }) });
    backjob.define('report', async (job) => {
      const result = { rows: 1, names: ['a'] };
      void job.finish(result);
      // Before the commit, which comes a turn later.
      result.rows = 99;
      result.names.push('b');
    });
    const { id } = await backjob.start({ name: 'report' });
    assert.deepEqual((await ended(backjob, id)).result, { rows: 1, names: ['a'] });
    const end = (await events(backjob, id)).at(-1)!;
    assert.deepEqual(end.type === 'job:completed' && end.result, { rows: 1, names: ['a'] });
  });

  it('ignores reports after the end instead of failing', async () => {
    const backjob = make();
    const done = gate();
    backjob.define('late', async (job) => {
      await job.finish('first');
      job.update(50);
      job.log('too late');
      await job.fail('also too late');
      await job.finish('again');
      done.open();
    });
    const { id } = await backjob.start({ name: 'late' });
    await done.promise;
    const job = await ended(backjob, id);
    assert.equal(job.status, 'completed');
    assert.equal(job.result, 'first');
    assert.deepEqual(
      (await events(backjob, id)).map((e) => e.type),
      ['job:created', 'job:start', 'job:completed'],
    );
  });

  it('fails a job whose handler throws, with the message and the error code, and keeps going', async () => {
    const backjob = make();
    backjob.define('throws', () => {
      throw new Error('disk full');
    });
    backjob.define('forbidden', async () => {
      throw new BackjobError('BACKJOB_ERR_HTTP_403', '403 Forbidden: not yours');
    });
    backjob.define('bad-result', () => ({ big: 1n }));
    backjob.define('fine', () => 'ok');
    const a = await backjob.start({ name: 'throws' });
    const b = await backjob.start({ name: 'forbidden' });
    const c = await backjob.start({ name: 'bad-result' });
    const d = await backjob.start({ name: 'fine' });
    const failed = await ended(backjob, a.id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error, 'disk full');
    const forbidden = await ended(backjob, b.id);
    assert.equal(forbidden.error, '403 Forbidden: not yours');
    assert.equal(forbidden.errorCode, 'BACKJOB_ERR_HTTP_403');
    const badResult = await ended(backjob, c.id);
    assert.equal(badResult.status, 'failed');
    assert.match(badResult.error!, /JSON-serializable/);
    assert.equal((await ended(backjob, d.id)).result, 'ok');
  });

  it('survives listeners that throw, reporting them on `error`', async () => {
    const backjob = make();
    backjob.define('quick', () => 1);
    const errors: Error[] = [];
    backjob.on('error', (error) => errors.push(error));
    backjob.on('job:completed', () => {
      throw new Error('listener bug');
    });
    backjob.on('job:start', async () => {
      throw new Error('async listener bug');
    });
    const heard = gate<string>();
    backjob.on('job:completed', (job) => heard.open(job.id));
    const { id } = await backjob.start({ name: 'quick' });
    assert.equal(await heard.promise, id, 'later listeners still hear the event');
    await waitFor(() => errors.length === 2);
    assert.deepEqual(errors.map((e) => e.message).sort(), ['async listener bug', 'listener bug']);
    assert.equal((await backjob.status(id))?.status, 'completed');
  });

  it('a store that fails to write an end reaches `error`, not an unhandled rejection that kills the app', async () => {
    const backend = memory();
    const append = backend.store.append.bind(backend.store);
    backend.store.append = async (batch) => {
      if (batch.some((entry) => entry.events.some((event) => event.type === 'job:failed'))) throw new Error('store is down');
      return append(batch);
    };
    const backjob = make({ backend });
    const errors: Error[] = [];
    backjob.on('error', (error) => errors.push(error));
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const later = gate();
    try {
      backjob.define('gives-up', async (job) => {
        // Not awaited, as a handler (or a route through req.backjob) that goes on with other things might do.
        void job.fail('no data');
        await later.promise;
      });
      await backjob.start({ name: 'gives-up' });
      await waitFor(() => errors.length > 0, 'the failed write to be reported');
      // Unhandled rejections are detected once the microtask queue drains: let a few macrotasks pass.
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(unhandled, []);
      assert.equal(errors[0]!.message, 'store is down');
    } finally {
      later.open();
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('finish() with a result that cannot be stored throws at the call, so an un-awaited call cannot complete the job without it', async () => {
    const backjob = make();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      backjob.define('bad-finish', async (job) => {
        void job.finish({ big: 1n });
      });
      const { id } = await backjob.start({ name: 'bad-finish' });
      const job = await ended(backjob, id);
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(unhandled, []);
      assert.equal(job.status, 'failed');
      assert.match(job.error!, /JSON-serializable/);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it("gives a job its definition's title, which its snapshot shows; an untitled job has none", async () => {
    const backjob = make();
    backjob.define('reports/quarterly', () => 1, { title: 'Quarterly report' });
    backjob.define('reports/plain', () => 2);
    const titled = await backjob.start({ name: 'reports/quarterly' });
    const plain = await backjob.start({ name: 'reports/plain' });
    assert.equal((await ended(backjob, titled.id)).title, 'Quarterly report');
    assert.equal(toSnapshot((await backjob.status(titled.id))!).title, 'Quarterly report');
    assert.equal((await ended(backjob, plain.id)).title, undefined);
  });

  it('refuses unknown job names with a 404 code', async () => {
    const backjob = make();
    await assert.rejects(backjob.start({ name: 'nope' }), (error: BackjobError) => {
      assert.equal(error.code, 'BACKJOB_ERR_UNKNOWN_JOB');
      assert.equal(error.status, 404);
      return true;
    });
  });
});

describe('job context validation', () => {
  it('throws BACKJOB_ERR_INVALID for nonsense progress, and clamps numbers to 0–100', async () => {
    const backjob = make();
    const thrown: unknown[] = [];
    backjob.define('validate', async (job) => {
      for (const bad of [NaN, '50', {}, [], Infinity, { progress: 'x' }, { text: 5 }, undefined]) {
        try {
          job.update(bad as never);
        } catch (error) {
          thrown.push(error);
        }
      }
      try {
        job.increment(Number.NaN);
      } catch (error) {
        thrown.push(error);
      }
      // Each written on its own: progress still waiting to be written is merged into the next.
      for (const report of [() => job.update(150), () => job.update(-5), () => job.update(null), () => job.update({ progress: 42.5 }), () => job.increment(1000)]) {
        report();
        await job.flush();
      }
    });
    const { id } = await backjob.start({ name: 'validate' });
    await ended(backjob, id);
    assert.equal(thrown.length, 9);
    for (const error of thrown) {
      assert.ok(error instanceof BackjobError);
      assert.equal(error.code, 'BACKJOB_ERR_INVALID');
      assert.equal(error.status, 400);
    }
    assert.match((thrown[1] as Error).message, /got `"50"` \(string\)/);
    const progress = (await events(backjob, id)).filter((e) => e.type === 'job:progress').map((e) => (e as { progress?: number | null }).progress);
    assert.deepEqual(progress, [100, 0, null, 42.5, 100]);
  });

  it('splits, cuts and bounds log lines', async () => {
    const backjob = make({ maxLineLength: 100, maxLogLines: 5 });
    backjob.define('chatty', async (job) => {
      job.log('one\ntwo\r\nthree\n');
      job.log('x'.repeat(500));
      for (let i = 0; i < 10; i++) job.log(`extra ${i}`);
      await job.flush();
    });
    const { id } = await backjob.start({ name: 'chatty' });
    const job = await ended(backjob, id);
    const lines = (await events(backjob, id)).filter((e) => e.type === 'job:log').map((e) => (e as { line: string }).line);
    assert.deepEqual(lines.slice(0, 3), ['one', 'two', 'three']);
    assert.ok(lines[3]!.length <= 100);
    assert.match(lines[3]!, /^x+ … \[cut \d+ characters\]$/);
    assert.equal(lines[3]!.replace(/ … .*/, '').length + Number(/cut (\d+)/.exec(lines[3]!)![1]), 500);
    assert.equal(lines[4], 'extra 0');
    assert.match(lines[5]!, /log limit of 5 lines/);
    assert.equal(lines.length, 6, 'one marker, then nothing');
    assert.equal(job.logLines, 6);
  });
});

describe('options', () => {
  it('throws at construction, saying what was expected and what came', () => {
    const cases: Array<[BackJobOptions, RegExp]> = [
      [{ errorTimeout: -1 }, /^Expected `errorTimeout` to be a number of seconds from 0 \(none\) to 2147483 \(24.8 days\), got `-1` \(number\)$/],
      [{ timeout: '5' as never }, /Expected `timeout` to be a number of seconds from 0 \(none\) to 2147483 .*, got `"5"` \(string\)/],
      // Longer than a timer holds: it would fire after 1 ms and fail every job at once.
      [{ timeout: 30 * 86_400 }, /Expected `timeout` to be a number of seconds from 0 \(none\) to 2147483/],
      [{ errorTimeout: 30 * 86_400 }, /Expected `errorTimeout` to be a number of seconds from 0 \(none\) to 2147483/],
      [{ routes: { '/exports/*': true } as never }, /Expected `routes` to be an array of paths/],
      [{ routes: 42 as never }, /Expected `routes` to be an array of paths/],
      [{ concurrency: 0 }, /Expected `concurrency` to be a positive integer, got `0` \(number\)/],
      [{ maxLogLines: 1.5 }, /Expected `maxLogLines` to be a positive integer/],
      [{ key: 'short' }, /Expected `key` to be a string of at least 16 bytes/],
      [{ basePath: 'backjob' }, /Expected `basePath` to be a path beginning with `\/`/],
      [{ baseUrl: 'ftp://x' }, /Expected `baseUrl` to be an http\(s\) origin/],
      // A path would be dropped (or break signatures): refused rather than ignored.
      [{ baseUrl: 'http://app.internal/app/' }, /Expected `baseUrl` to be an http\(s\) origin, without a path/],
      [{ baseUrl: 'http://user:secret@app.internal' }, /Expected `baseUrl` to be an http\(s\) origin/],
      [{ routes: ['reports'] }, /Expected `routes` to be an array of paths/],
      [{ merge: 'yes' as never }, /Expected `merge` to be a boolean/],
      [{ concurency: 2 } as never, /Unknown option `concurency`/],
    ];
    for (const [options, message] of cases) {
      assert.throws(
        () => createBackJob({ backend: memory(), ...options }),
        (error: BackjobError) => error.code === 'BACKJOB_ERR_INVALID' && message.test(error.message),
        JSON.stringify(options),
      );
    }
  });

  it('checks start() options: a wrong `as`, `merge` or `delay` is a clear error, not a silently anonymous job', async () => {
    const backjob = make({ identify: (req) => (req.headers['x-user'] as string) ?? null });
    backjob.define('x', () => 1);
    const cases: Array<[object, RegExp]> = [
      // A principal where the request belongs: it would have been read as nobody.
      [{ as: 'alice' }, /Expected `as` to be the starting request or "anonymous", got `"alice"` \(string\)/],
      [{ merge: 'no' }, /Expected `merge` to be a boolean/],
      [{ delay: -1 }, /Expected `delay` to be a non-negative number of seconds/],
    ];
    for (const [options, message] of cases) {
      await assert.rejects(
        backjob.start({ name: 'x' }, options as never),
        (error: BackjobError) => error.code === 'BACKJOB_ERR_INVALID' && message.test(error.message),
        JSON.stringify(options),
      );
    }
    assert.equal((await backjob.list({})).length, 0);
  });

  it('checks list() filters instead of answering a typo with nothing', async () => {
    const backjob = make();
    for (const filter of [{ status: 'done' }, { status: ['running', 'ended'] }, { limit: -1 }, { limit: 2.5 }, { owner: 7 }]) {
      await assert.rejects(backjob.list(filter as never), (error: BackjobError) => error.code === 'BACKJOB_ERR_INVALID', JSON.stringify(filter));
    }
    assert.deepEqual(await backjob.list({ status: ['waiting', 'completed'], limit: 10, owner: null }), []);
  });

  it('merges defaults with what was given', () => {
    const backjob = make({ concurrency: 2, basePath: '/jobs/' });
    assert.equal(backjob.host.options.concurrency, 2);
    assert.equal(backjob.host.options.basePath, '/jobs');
    assert.equal(backjob.host.options.errorTimeout, 0);
    assert.equal(backjob.host.options.maxLogLines, 10_000);
    assert.equal(backjob.host.options.merge, true);
  });

  it('checks define() options and refuses a second definition', () => {
    const backjob = make();
    assert.throws(() => backjob.define('x', () => 1, { retries: -1 }), /Expected `retries` to be a non-negative integer/);
    assert.throws(() => backjob.define('x', 'nope' as never), /Expected `handler` to be a function/);
    assert.throws(() => backjob.define('x', () => 1, { timeout: 30 * 86_400 }), /Expected `timeout` to be a number of seconds from 0 \(none\) to 2147483/);
    assert.throws(() => backjob.define('x', () => 1, { errorTimeout: -5 }), /Expected `errorTimeout` to be a number of seconds/);
    assert.throws(() => backjob.define('x', () => 1, { title: '  ' }), /Expected `title` to be a non-empty string of at most 200 characters/);
    assert.throws(() => backjob.define('x', () => 1, { title: 42 as never }), /Expected `title` to be a non-empty string/);
    backjob.define('x', () => 1, { timeout: 2_147_483 });
    backjob.define('y', () => 1);
    assert.throws(() => backjob.define('y', () => 2), /already defined/);
  });
});

describe('merging, delay and concurrency', () => {
  it('merges identical requests while one waits or runs', async () => {
    const backjob = make();
    const release = gate();
    backjob.define('slow', async (_job, _params) => {
      await release.promise;
    });
    const first = await backjob.start({ name: 'slow', params: { a: 1, b: 2 } });
    const same = await backjob.start({ name: 'slow', params: { b: 2, a: 1 } });
    const other = await backjob.start({ name: 'slow', params: { a: 2 } });
    const unmerged = await backjob.start({ name: 'slow', params: { a: 1, b: 2 } }, { merge: false });
    assert.equal(same.merged, true);
    assert.equal(same.id, first.id, 'key order does not matter');
    assert.notEqual(other.id, first.id);
    assert.notEqual(unmerged.id, first.id);
    release.open();
    await ended(backjob, first.id);
    const after = await backjob.start({ name: 'slow', params: { a: 1, b: 2 } });
    assert.equal(after.merged, false, 'an ended job merges nothing');
  });

  it('keeps different owners apart when merging', async () => {
    const backjob = make({ identify: (req) => String(req.headers['x-user'] ?? '') || null });
    backjob.define('own', untilAborted);
    const as = (user: string) => ({ headers: { 'x-user': user } }) as never;
    const alice = await backjob.start({ name: 'own' }, { as: as('alice') });
    const bob = await backjob.start({ name: 'own' }, { as: as('bob') });
    const aliceAgain = await backjob.start({ name: 'own' }, { as: as('alice') });
    assert.notEqual(alice.id, bob.id);
    assert.equal(aliceAgain.id, alice.id);
    assert.equal((await backjob.status(alice.id))?.owner, 'alice');
  });

  it('takes a numeric principal from `identify` as the user it names, never as nobody', async () => {
    // Session user ids are often numbers; read as "nobody", two users' jobs would merge and each get the other's token.
    const backjob = make({ identify: (req) => (req.headers as unknown as { uid?: number }).uid as never });
    backjob.define('own', untilAborted);
    const as = (uid: number) => ({ headers: { uid } }) as never;
    const one = await backjob.start({ name: 'own' }, { as: as(1) });
    const two = await backjob.start({ name: 'own' }, { as: as(2) });
    assert.equal(two.merged, false);
    assert.notEqual(two.id, one.id);
    assert.equal((await backjob.status(one.id))?.owner, '1');
    assert.equal(await backjob.host.identify({ headers: { uid: 0 } } as never), '0');
    const broken = make({ identify: () => ({ id: 1 }) as never });
    await assert.rejects(broken.host.identify({ headers: {} } as never), (error: BackjobError) => /identify/.test(error.message));
  });

  it('waits for the delay before starting', async () => {
    const backjob = make();
    backjob.define('later', () => 'done');
    const { id } = await backjob.start({ name: 'later' }, { delay: 0.3 });
    assert.equal((await backjob.status(id))?.status, 'waiting');
    const job = await ended(backjob, id);
    assert.ok(job.startedAt! >= job.createdAt + 300, 'not started before its delay');
    assert.ok(job.runAt >= job.createdAt + 300);
  });

  it('keeps a job waiting through a delay longer than a timer can hold (about 24.8 days)', async () => {
    const backjob = make();
    backjob.define('later', () => 'done');
    const { id } = await backjob.start({ name: 'later' }, { delay: 30 * 86_400 });
    const now = await backjob.start({ name: 'later' }, { merge: false });
    await ended(backjob, now.id);
    // An overflowing setTimeout fires after 1 ms: give that every chance to happen.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal((await backjob.status(id))?.status, 'waiting');
  });

  it('runs at most `concurrency` jobs at once', async () => {
    const backjob = make({ concurrency: 2 });
    let running = 0;
    let most = 0;
    backjob.define('busy', async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 20));
      running--;
    });
    const ids = [];
    for (let i = 0; i < 8; i++) ids.push((await backjob.start({ name: 'busy', params: i })).id);
    for (const id of ids) assert.equal((await ended(backjob, id)).status, 'completed');
    assert.equal(most, 2);
  });

  it('runs all of 1,000 jobs started in a loop (SQLite)', async () => {
    const backjob = make({ backend: sqlite({ file: sqliteFile() }), concurrency: 8 });
    let ran = 0;
    backjob.define('tiny', async (job, n: number) => {
      job.update(50);
      ran++;
      return n;
    });
    const ids: string[] = [];
    for (let i = 0; i < 1000; i++) ids.push((await backjob.start({ name: 'tiny', params: i })).id);
    assert.equal(new Set(ids).size, 1000);
    await waitFor(async () => (await backjob.list({ status: 'completed' })).length === 1000, '1,000 completed jobs', 60_000);
    assert.equal(ran, 1000);
    assert.equal((await backjob.list({ status: ['waiting', 'running', 'failed'] })).length, 0);
  });
});

describe('stall, timeout and cancel', () => {
  it('fails a job with no event for errorTimeout seconds, aborting its signal', async () => {
    const backjob = make({ errorTimeout: 0.3 });
    const reason = gate<unknown>();
    backjob.define('stuck', async (job) => {
      job.update(5);
      await new Promise((resolve) => job.signal.addEventListener('abort', resolve));
      reason.open(job.signal.reason);
      job.update(99); // ignored: the job already failed
    });
    const { id } = await backjob.start({ name: 'stuck' });
    const job = await ended(backjob, id);
    assert.equal(job.status, 'failed');
    assert.equal(job.error, 'stalled: no progress for 0.3 s');
    assert.equal(job.errorCode, 'BACKJOB_ERR_STALLED');
    assert.equal((await reason.promise as BackjobError).code, 'BACKJOB_ERR_STALLED');
    assert.equal(job.progress, 5);
  });

  it('does not stall a job that keeps reporting', async () => {
    const backjob = make({ errorTimeout: 1 });
    backjob.define('steady', async (job) => {
      const until = Date.now() + 1600;
      while (Date.now() < until) {
        job.increment(1);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      return 'steady';
    });
    const { id } = await backjob.start({ name: 'steady' });
    const job = await ended(backjob, id);
    assert.equal(job.status, 'completed', job.error);
  });

  it('fails a job that runs past its timeout', async () => {
    const backjob = make();
    backjob.define('forever', (job) => new Promise((_, reject) => job.signal.addEventListener('abort', () => reject(job.signal.reason))), {
      timeout: 0.3,
    });
    const { id } = await backjob.start({ name: 'forever' });
    const job = await ended(backjob, id);
    assert.equal(job.error, 'timed out after 0.3 s');
    assert.equal(job.errorCode, 'BACKJOB_ERR_TIMEOUT');
  });

  it('cancels a waiting job before it ever starts', async () => {
    const backjob = make({ concurrency: 1 });
    const release = gate();
    let startedSecond = false;
    backjob.define('blocker', () => release.promise);
    backjob.define('second', () => {
      startedSecond = true;
    });
    const blocker = await backjob.start({ name: 'blocker' });
    const second = await backjob.start({ name: 'second' }, { delay: 0.05 });
    const heard = gate<JobRecord>();
    backjob.on('job:canceled', (job) => heard.open(job));
    assert.equal(await backjob.cancel(second.id, 'not needed'), true);
    assert.equal((await heard.promise).id, second.id);
    const job = await backjob.status(second.id);
    assert.equal(job?.status, 'canceled');
    assert.equal(job?.error, 'not needed');
    release.open();
    await ended(backjob, blocker.id);
    assert.equal(startedSecond, false);
    assert.equal(await backjob.cancel(second.id), false, 'already ended');
    assert.equal(await backjob.cancel('unknown'), false);
  });

  it('cancels a running job: aborts its signal with the reason and drops what it reports after', async () => {
    const backjob = make();
    const running = gate();
    const aborted = gate<unknown>();
    backjob.define('long', async (job) => {
      job.update(30);
      running.open();
      await new Promise((resolve) => job.signal.addEventListener('abort', resolve));
      aborted.open(job.signal.reason);
      job.update(80);
      throw job.signal.reason;
    });
    const { id } = await backjob.start({ name: 'long' });
    await running.promise;
    await waitFor(async () => (await backjob.status(id))?.status === 'running');
    assert.equal(await backjob.cancel(id, 'user changed their mind'), true);
    assert.equal((await backjob.status(id))?.status, 'canceled', 'durable when cancel resolves');
    const reason = (await aborted.promise) as BackjobError;
    assert.equal(reason.code, 'BACKJOB_ERR_CANCELED');
    assert.equal(reason.message, 'user changed their mind');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const job = await backjob.status(id);
    assert.equal(job?.status, 'canceled');
    assert.equal(job?.progress, 30);
    assert.equal((await events(backjob, id)).at(-1)?.type, 'job:canceled');
  });

  it('answers false to a cancel that lost the race to the job finishing in the same write', async () => {
    const backjob = make();
    const started = gate<JobContext>();
    backjob.define('work', (job) => {
      started.open(job);
      return new Promise(() => {}); // ends by the finish() below
    });
    const heard: string[] = [];
    backjob.on('job:completed', () => heard.push('job:completed'));
    backjob.on('job:canceled', () => heard.push('job:canceled'));
    const { id } = await backjob.start({ name: 'work' });
    const job = await started.promise;
    await waitFor(async () => (await backjob.status(id))?.status === 'running');
    // The handler finishes as the user clicks Cancel: both ends go in one write, the first one wins.
    void job.finish('done');
    assert.equal(await backjob.cancel(id), false);
    assert.equal((await backjob.status(id))?.status, 'completed');
    assert.deepEqual(heard, ['job:completed']);
  });
});

describe('retention', () => {
  it('deletes old ended jobs and never a waiting or running one', async () => {
    const file = sqliteFile();
    const backjob = make({
      backend: sqlite({ file }),
      concurrency: 1,
      backlogDays: 0.4 / 86_400,
      allBacklogDays: 1.2 / 86_400,
    });
    const release = gate();
    backjob.define('done', () => 'ok');
    backjob.define('broken', () => {
      throw new Error('x');
    });
    backjob.define('hold', () => release.promise);
    const completed = await backjob.start({ name: 'done' });
    const failed = await backjob.start({ name: 'broken' });
    await ended(backjob, completed.id);
    await ended(backjob, failed.id);
    const running = await backjob.start({ name: 'hold' });
    await waitFor(async () => (await backjob.status(running.id))?.status === 'running');
    const waiting = await backjob.start({ name: 'done' }, { merge: false });

    await waitFor(async () => (await backjob.status(completed.id)) === null, 'completed job swept', 15_000);
    await waitFor(async () => (await backjob.status(failed.id)) === null, 'failed job swept', 15_000);
    // Both have been around longer than every retention period by now.
    assert.equal((await backjob.status(running.id))?.status, 'running');
    assert.equal((await backjob.status(waiting.id))?.status, 'waiting');
    assert.ok((await events(backjob, running.id)).length >= 2);
    release.open();
    await ended(backjob, waiting.id);
  });

  it('stops sweeping once closed, even when closed before it was ready', async () => {
    const backend = memory();
    let sweeps = 0;
    const deleteEnded = backend.store.deleteEnded.bind(backend.store);
    backend.store.deleteEnded = (opts) => {
      sweeps++;
      return deleteEnded(opts);
    };
    // The shortest sweep period (1 s).
    const backjob = createBackJob({ backend, key: KEY, backlogDays: 1 / 86_400 });
    await backjob.close();
    const afterClose = sweeps;
    // A leftover sweep timer would fire once a second: give it more than one chance.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    assert.equal(sweeps, afterClose);
  });
});

describe('tokens and access', () => {
  it('derives watch tokens from the stored secret, so they survive a restart', async () => {
    const file = sqliteFile();
    const first = createBackJob({ backend: sqlite({ file }) });
    first.define('x', () => 1);
    const { id, token } = await first.start({ name: 'x' });
    await first.close();
    const second = createBackJob({ backend: sqlite({ file }) });
    open.push(second);
    await second.ready;
    assert.equal(second.tokenFor(id), token);
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  });

  it('lets the owner or the token holder see a job, and nobody else', async () => {
    const backjob = make({ identify: (req) => (req.headers['x-user'] as string) ?? null });
    backjob.define('mine', untilAborted);
    const alice = { headers: { 'x-user': 'alice' } } as never;
    const owned = await backjob.start({ name: 'mine' }, { as: alice });
    const anonymous = await backjob.start({ name: 'mine' }, { as: 'anonymous' });
    assert.equal((await backjob.authorize(owned.id, { principal: 'alice' }))?.id, owned.id);
    assert.equal(await backjob.authorize(owned.id, { principal: 'bob' }), null);
    assert.equal((await backjob.authorize(owned.id, { principal: 'bob', token: owned.token }))?.id, owned.id);
    assert.equal(await backjob.authorize(owned.id, { token: anonymous.token }), null);
    assert.equal(await backjob.authorize(anonymous.id, { principal: null }), null, 'nobody owns an anonymous job');
    assert.equal((await backjob.authorize(anonymous.id, { token: anonymous.token }))?.owner, null);
    assert.equal(await backjob.authorize('missing', { token: anonymous.token }), null);
  });

  it('knows which route paths browsers may launch', () => {
    const backjob = make({ routes: ['/reports/*', '/export'] });
    assert.equal(backjob.host.isLaunchableRoute('/reports/build'), true);
    assert.equal(backjob.host.isLaunchableRoute('/export'), true);
    assert.equal(backjob.host.isLaunchableRoute('/export/more'), false);
    assert.equal(backjob.host.isLaunchableRoute('/admin'), false);
    assert.equal(backjob.host.isLaunchableRoute('/reports/../admin'), false);
    assert.equal(backjob.host.isLaunchableRoute('/reports/%2e%2e/admin'), false);
    assert.equal(backjob.host.isLaunchableRoute('/reports//evil'), false);
    assert.equal(backjob.host.isLaunchableRoute('/reports/\t../admin'), false);
    assert.equal(backjob.host.isLaunchableRoute('/reports/.. '), false);
  });

  it('refuses a route path with control characters instead of calling a path it was not given', async () => {
    const backjob = make();
    await assert.rejects(backjob.start({ route: '/reports/\n../admin' }), (error: BackjobError) => error.code === 'BACKJOB_ERR_INVALID');
    assert.equal((await backjob.list({})).length, 0);
  });
});

describe('contextFor and shutdown', () => {
  it('gives a job context that writes through the same ordered log', async () => {
    const backjob = make();
    const hold = gate();
    backjob.define('outer', () => hold.promise);
    const { id } = await backjob.start({ name: 'outer' });
    await waitFor(async () => (await backjob.status(id))?.status === 'running');
    let ended = false;
    const ctx = await backjob.host.contextFor(id, { signal: new AbortController().signal, onEnd: () => (ended = true) });
    ctx.update({ progress: 60, text: 'from the route' });
    ctx.log('route says hi');
    await ctx.finish({ via: 'route' });
    assert.equal(ended, true);
    const job = await backjob.status(id);
    assert.equal(job?.status, 'completed');
    assert.deepEqual(job?.result, { via: 'route' });
    hold.open();
    await assert.rejects(backjob.host.contextFor(id, { signal: new AbortController().signal }), { code: 'BACKJOB_ERR_ENDED' });
    await assert.rejects(backjob.host.contextFor('missing', { signal: new AbortController().signal }), { code: 'BACKJOB_ERR_NOT_FOUND' });
  });

  it('refuses a context for a job that ended while it was being read, instead of keeping a context nothing will end', async () => {
    const backend = memory();
    const backjob = make({ backend });
    backjob.define('held', untilAborted);
    const { id } = await backjob.start({ name: 'held' });
    await waitFor(async () => (await backjob.status(id))?.status === 'running');
    const get = backend.store.get.bind(backend.store);
    let raced = false;
    backend.store.get = async (jobId) => {
      const seen = await get(jobId);
      if (!raced) {
        // The job is canceled (durably, listeners told) after the read and before the caller acts on it.
        raced = true;
        await backjob.cancel(id);
      }
      return seen;
    };
    await assert.rejects(backjob.host.contextFor(id, { signal: new AbortController().signal }), { code: 'BACKJOB_ERR_ENDED' });
  });

  it('on close, aborts running jobs with "shutdown" and records them interrupted', async () => {
    const file = sqliteFile();
    const backjob = createBackJob({ backend: sqlite({ file }), key: KEY });
    const running = gate();
    let reason: unknown;
    backjob.define('obedient', async (job) => {
      running.open();
      await new Promise((resolve) => job.signal.addEventListener('abort', resolve));
      reason = job.signal.reason;
      throw reason;
    });
    backjob.define('finisher', async (job) => {
      await new Promise((resolve) => job.signal.addEventListener('abort', resolve));
      return 'finished anyway';
    });
    const a = await backjob.start({ name: 'obedient' });
    const b = await backjob.start({ name: 'finisher' });
    await running.promise;
    await waitFor(async () => (await backjob.status(b.id))?.status === 'running');
    await backjob.close();
    assert.equal((reason as BackjobError).code, 'BACKJOB_ERR_SHUTDOWN');
    assert.equal((reason as BackjobError).message, 'shutdown');

    const after = createBackJob({ backend: sqlite({ file }), key: KEY });
    open.push(after);
    const jobA = await after.status(a.id);
    assert.equal(jobA?.status, 'failed');
    assert.equal(jobA?.error, 'interrupted: shutdown');
    assert.equal(jobA?.errorCode, 'BACKJOB_ERR_INTERRUPTED');
    assert.equal((await after.status(b.id))?.result, 'finished anyway');
    await assert.rejects(backjob.start({ name: 'obedient' }), { code: 'BACKJOB_ERR_CLOSED' });
  });

  it('on restart, runs what was waiting and re-runs a retryable job that shutdown interrupted', async () => {
    const file = sqliteFile();
    const first = createBackJob({ backend: sqlite({ file }), key: KEY, concurrency: 1 });
    const running = gate();
    first.define('retryable', async (job) => {
      running.open();
      await new Promise((resolve) => job.signal.addEventListener('abort', resolve));
      throw job.signal.reason;
    }, { retries: 2 });
    first.define('queued', () => 'never here');
    const retryable = await first.start({ name: 'retryable' });
    const queued = await first.start({ name: 'queued' });
    await running.promise;
    await first.close();

    const second = createBackJob({ backend: sqlite({ file }), key: KEY, concurrency: 1, worker: false });
    open.push(second);
    assert.equal((await second.status(retryable.id))?.status, 'running', 'left for recovery');
    assert.equal((await second.status(queued.id))?.status, 'waiting');
    await second.close();

    const third = createBackJob({ backend: sqlite({ file }), key: KEY });
    open.push(third);
    third.define('retryable', () => 'rerun', { retries: 2 });
    third.define('queued', () => 'ran after restart');
    const rerun = await ended(third, retryable.id);
    assert.equal(rerun.result, 'rerun');
    assert.equal(rerun.attempt, 2);
    assert.equal(rerun.retriesLeft, 1);
    assert.equal((await ended(third, queued.id)).result, 'ran after restart');
  });
});
