/**
 * The behaviour every {@link JobStore} must have, as one node:test suite that
 * each implementation's test file runs against a real instance:
 *
 * ```ts
 * runStoreContract('sqlite', async () => {
 *   const dir = mkdtempSync(join(tmpdir(), 'backjob-'));
 *   const store = new SqliteStore(join(dir, 'jobs.db'));
 *   return { store, cleanup: async () => { await store.close(); rmSync(dir, { recursive: true }); } };
 * });
 * ```
 *
 * `open` is called once per test and must return an empty store.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isBackjobError } from '../errors.js';
import type { JobEventData, JobRecord, JobStore } from '../types.js';
import { QUOTA_RETRY_AFTER_SECONDS, toSnapshot } from '../core/records.js';
import { familyContract } from './family-contract.js';
import { sampleJob } from './sample-job.js';

export { sampleJob };

/** Registers the shared store suite under `describe(name)`. */
export function runStoreContract(name: string, open: () => Promise<{ store: JobStore; cleanup(): Promise<void> }>): void {
  describe(`JobStore contract: ${name}`, () => {
    let store: JobStore;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await open());
    });
    afterEach(async () => {
      await cleanup();
    });

    familyContract(() => store);

    /** Appends to one job and returns its result. */
    async function append(jobId: string, events: JobEventData[], runner?: string | null) {
      const [result] = await store.append([{ jobId, events, ...(runner === undefined ? {} : { runner }) }]);
      return result!;
    }

    it('creates a waiting job with its job:created event as seq 1', async () => {
      const input = sampleJob({ route: undefined, credentials: 'sealed-secret' });
      const { job, merged } = await store.create(input);
      assert.equal(merged, false);
      assert.equal(job.id, input.id);
      assert.equal(job.status, 'waiting');
      assert.equal(job.seq, 1);
      assert.equal(job.progress, 0);
      assert.equal(job.text, '');
      assert.equal(job.logLines, 0);
      assert.equal(job.attempt, 0);
      assert.deepEqual(job.params, input.params);
      assert.equal(job.owner, 'alice');
      assert.equal(job.createdAt, input.createdAt);
      assert.equal('credentials' in job, false, 'credentials never sit on the row');
      assert.deepEqual(await store.get(input.id), job);
      const events = await store.eventsAfter(input.id, 0, 10);
      assert.deepEqual(events, [{ type: 'job:created', jobId: input.id, seq: 1, at: input.createdAt }]);
    });

    it("keeps a job's title through its changes, and shows it in the snapshot", async () => {
      const input = sampleJob({ title: 'Quarterly report' });
      await store.create(input);
      await append(input.id, [{ type: 'job:start', attempt: 1 }, { type: 'job:progress', progress: 50 }]);
      const job = (await store.get(input.id))!;
      assert.equal(job.title, 'Quarterly report');
      assert.equal(toSnapshot(job).title, 'Quarterly report');
      const untitled = sampleJob();
      await store.create(untitled);
      assert.equal('title' in toSnapshot((await store.get(untitled.id))!), false, 'no title key when none was given');
    });

    it('returns null for an unknown job', async () => {
      assert.equal(await store.get('nope'), null);
      assert.deepEqual(await store.eventsAfter('nope', 0, 10), []);
    });

    it('merges only with a waiting or running job of the same merge key', async () => {
      const first = await store.create(sampleJob({ mergeKey: 'k1' }));
      const again = await store.create(sampleJob({ mergeKey: 'k1' }));
      assert.equal(again.merged, true);
      assert.equal(again.job.id, first.job.id);
      await append(first.job.id, [{ type: 'job:start', attempt: 1 }]);
      const whileRunning = await store.create(sampleJob({ mergeKey: 'k1' }));
      assert.equal(whileRunning.merged, true);
      assert.equal(whileRunning.job.id, first.job.id);

      const other = await store.create(sampleJob({ mergeKey: 'k2' }));
      assert.equal(other.merged, false);
      const a = await store.create(sampleJob({ mergeKey: null }));
      const b = await store.create(sampleJob({ mergeKey: null }));
      assert.equal(b.merged, false);
      assert.notEqual(a.job.id, b.job.id);

      await append(first.job.id, [{ type: 'job:completed', result: 1 }]);
      const afterEnd = await store.create(sampleJob({ mergeKey: 'k1' }));
      assert.equal(afterEnd.merged, false, 'an ended job no longer holds its merge key');
      assert.notEqual(afterEnd.job.id, first.job.id);
    });

    it('numbers appended events after the last seq and folds them into the row', async () => {
      const { job } = await store.create(sampleJob());
      const started = await append(job.id, [{ type: 'job:start', attempt: 1 }], 'runner-1');
      assert.deepEqual(
        started.events.map((e) => [e.seq, e.type, e.jobId]),
        [[2, 'job:start', job.id]],
      );
      assert.equal(typeof started.events[0]!.at, 'number');
      assert.equal(started.job!.status, 'running');
      assert.equal(started.job!.attempt, 1);
      assert.equal(started.job!.runner, 'runner-1');
      assert.equal(typeof started.job!.startedAt, 'number');

      const progressed = await append(job.id, [
        { type: 'job:progress', progress: 40, text: 'Reading' },
        { type: 'job:log', line: 'one' },
        { type: 'job:log', line: 'two' },
        { type: 'job:progress', progress: null },
      ]);
      assert.deepEqual(
        progressed.events.map((e) => e.seq),
        [3, 4, 5, 6],
      );
      assert.equal(progressed.job!.seq, 6);
      assert.equal(progressed.job!.progress, null);
      assert.equal(progressed.job!.text, 'Reading');
      assert.equal(progressed.job!.logLines, 2);
      assert.equal(progressed.job!.updatedAt, progressed.events.at(-1)!.at);
      assert.equal(progressed.job!.runner, 'runner-1', 'runner stays until the end');

      const ended = await append(job.id, [{ type: 'job:completed', result: { rows: [1, 2] } }]);
      assert.equal(ended.job!.status, 'completed');
      assert.equal(ended.job!.progress, 100);
      assert.deepEqual(ended.job!.result, { rows: [1, 2] });
      assert.equal(ended.job!.endedAt, ended.events[0]!.at);
      assert.equal(ended.job!.runner, null, 'an end clears the runner');
      assert.deepEqual(await store.get(job.id), ended.job);

      const events = await store.eventsAfter(job.id, 0, 100);
      assert.deepEqual(
        events.map((e) => e.seq),
        [1, 2, 3, 4, 5, 6, 7],
      );
      assert.deepEqual(events[3], { type: 'job:log', line: 'one', jobId: job.id, seq: 4, at: events[3]!.at });
    });

    it('keeps ended final: events after an end are dropped, in the same batch and later', async () => {
      const { job } = await store.create(sampleJob());
      const result = await append(job.id, [
        { type: 'job:start', attempt: 1 },
        { type: 'job:failed', reason: 'boom', code: 'BACKJOB_ERR_TEST' },
        { type: 'job:progress', progress: 99 },
      ]);
      assert.deepEqual(
        result.events.map((e) => e.type),
        ['job:start', 'job:failed'],
      );
      assert.equal(result.job!.status, 'failed');
      assert.equal(result.job!.error, 'boom');
      assert.equal(result.job!.errorCode, 'BACKJOB_ERR_TEST');

      const late = await append(job.id, [{ type: 'job:completed' }, { type: 'job:log', line: 'late' }]);
      assert.deepEqual(late.events, []);
      assert.equal(late.job!.status, 'failed');
      assert.equal(late.job!.seq, 3);
      assert.equal((await store.eventsAfter(job.id, 0, 100)).length, 3);
    });

    it('appends to several jobs in one batch, answering in batch order', async () => {
      const { job: a } = await store.create(sampleJob());
      const { job: b } = await store.create(sampleJob());
      const results = await store.append([
        { jobId: a.id, events: [{ type: 'job:start', attempt: 1 }], runner: 'r' },
        { jobId: 'missing', events: [{ type: 'job:log', line: 'x' }] },
        { jobId: b.id, events: [{ type: 'job:canceled', reason: 'not needed' }] },
        { jobId: a.id, events: [{ type: 'job:log', line: 'after start' }] },
      ]);
      assert.equal(results.length, 4);
      assert.deepEqual(
        results[0]!.events.map((e) => e.seq),
        [2],
      );
      assert.deepEqual(results[1], { events: [], job: null });
      assert.equal(results[2]!.job!.status, 'canceled');
      assert.equal(results[2]!.job!.error, 'not needed');
      assert.deepEqual(
        results[3]!.events.map((e) => [e.seq, e.type]),
        [[3, 'job:log']],
      );
    });

    it('uses up one retry when a job starts again (attempt > 1)', async () => {
      const { job } = await store.create(sampleJob({ retriesLeft: 2 }));
      await append(job.id, [{ type: 'job:start', attempt: 1 }], 'dead-runner');
      const rerun = await append(job.id, [{ type: 'job:start', attempt: 2 }], 'new-runner');
      assert.equal(rerun.job!.status, 'running');
      assert.equal(rerun.job!.attempt, 2);
      assert.equal(rerun.job!.retriesLeft, 1);
      assert.equal(rerun.job!.runner, 'new-runner');
    });

    it('pages events after a seq', async () => {
      const { job } = await store.create(sampleJob());
      await append(
        job.id,
        Array.from({ length: 24 }, (_, i) => ({ type: 'job:log', line: `line ${i + 1}` }) as const),
      );
      const page1 = await store.eventsAfter(job.id, 0, 10);
      const page2 = await store.eventsAfter(job.id, 10, 10);
      const page3 = await store.eventsAfter(job.id, 20, 10);
      assert.deepEqual(
        page1.map((e) => e.seq),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      );
      assert.deepEqual(
        page2.map((e) => e.seq),
        [11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
      );
      assert.deepEqual(
        page3.map((e) => e.seq),
        [21, 22, 23, 24, 25],
      );
      assert.deepEqual(await store.eventsAfter(job.id, 25, 10), []);
      assert.deepEqual(
        (await store.eventsAfter(job.id, 7, 2)).map((e) => (e.type === 'job:log' ? e.line : e.type)),
        ['line 7', 'line 8'],
      );
    });

    it('gives back a long append exactly, read from any seq, and ends it where it ended', async () => {
      const { job } = await store.create(sampleJob());
      const result = { rows: [1, 2], at: new Date(0) };
      // Long enough to cross any store's run of rows (SQLite keeps up to 256 events a row).
      const events: JobEventData[] = [
        { type: 'job:start', attempt: 1 },
        ...Array.from({ length: 300 }, (_, i) => ({ type: 'job:log', line: `line ${i + 1}` }) as const),
        { type: 'job:progress', progress: 40, text: 'almost' },
        ...Array.from({ length: 60 }, (_, i) => ({ type: 'job:log', line: `more ${i + 1}` }) as const),
        { type: 'job:completed', result },
        { type: 'job:log', line: 'after the end' },
      ];
      const kept = events.length - 1;
      const lastSeq = 1 + kept; // after job:created
      const appended = await append(job.id, events);
      result.rows.push(3); // the app changing its object afterwards changes nothing stored
      assert.equal(appended.events.length, kept, 'nothing after the end');
      assert.equal(appended.job!.logLines, 360);
      assert.equal(appended.job!.status, 'completed');
      const all = await store.eventsAfter(job.id, 1, 1000);
      assert.deepEqual(all.map((e) => e.seq), Array.from({ length: kept }, (_, i) => i + 2));
      assert.deepEqual(all, JSON.parse(JSON.stringify(appended.events)), 'read as appended, as JSON gives it');
      assert.deepEqual(all.at(-1), { type: 'job:completed', result: { rows: [1, 2], at: new Date(0).toJSON() }, jobId: job.id, seq: lastSeq, at: all.at(-1)!.at });
      for (const after of [1, 2, 3, 64, 65, 100, 255, 256, 257, 258, 302, 303, 330, lastSeq - 1, lastSeq, lastSeq + 50]) {
        for (const limit of [1, 7, 256, 500]) {
          const page = await store.eventsAfter(job.id, after, limit);
          assert.deepEqual(page, all.filter((e) => e.seq > after).slice(0, limit), `after ${after}, limit ${limit}`);
        }
      }
      assert.equal((await store.get(job.id))!.logLines, 360);
    });

    it('lists newest first, filtered by owner and status, up to a limit', async () => {
      const t = Date.now() - 10_000;
      const { job: a } = await store.create(sampleJob({ owner: 'alice', createdAt: t + 1 }));
      const { job: b } = await store.create(sampleJob({ owner: 'bob', createdAt: t + 2 }));
      const { job: c } = await store.create(sampleJob({ owner: null, createdAt: t + 3 }));
      const { job: d } = await store.create(sampleJob({ owner: 'alice', createdAt: t + 4 }));
      await append(a.id, [{ type: 'job:start', attempt: 1 }]);
      await append(d.id, [{ type: 'job:canceled', reason: 'x' }]);

      const ids = (jobs: { id: string }[]) => jobs.map((j) => j.id);
      assert.deepEqual(ids(await store.list({})), [d.id, c.id, b.id, a.id]);
      assert.deepEqual(ids(await store.list({ owner: 'alice' })), [d.id, a.id]);
      assert.deepEqual(ids(await store.list({ owner: null })), [c.id], 'owner null: jobs nobody owns');
      assert.deepEqual(ids(await store.list({ status: 'waiting' })), [c.id, b.id]);
      assert.deepEqual(ids(await store.list({ status: ['running', 'canceled'] })), [d.id, a.id]);
      assert.deepEqual(ids(await store.list({ owner: 'alice', status: 'running' })), [a.id]);
      assert.deepEqual(ids(await store.list({ limit: 2 })), [d.id, c.id]);
      assert.deepEqual(ids(await store.list({ owner: 'carol' })), []);
      const [listed] = await store.list({ owner: 'alice', status: 'running' });
      assert.deepEqual(listed, await store.get(a.id), 'list returns whole records');
    });

    it('pages a list after a cursor, same-millisecond jobs included, and after a cursor whose job is gone', async () => {
      const t = Date.now() - 20_000;
      const jobs: JobRecord[] = [];
      // Two jobs in each millisecond: ties must neither repeat nor vanish across pages.
      for (let i = 0; i < 10; i++) jobs.push((await store.create(sampleJob({ owner: 'pager', createdAt: t + Math.floor(i / 2) }))).job);
      const newestFirst = (await store.list({ owner: 'pager' })).map((j) => j.id);
      assert.equal(newestFirst.length, 10);
      const seen: string[] = [];
      let before: { createdAt: number; id: string } | undefined;
      for (;;) {
        const page = await store.list({ owner: 'pager', limit: 3, ...(before ? { before } : {}) });
        if (page.length === 0) break;
        seen.push(...page.map((j) => j.id));
        const last = page.at(-1)!;
        before = { createdAt: last.createdAt, id: last.id };
      }
      assert.deepEqual(seen, newestFirst, 'the pages together are the whole list, in order, once each');
      const gone = { createdAt: t + 2, id: 'no-such-job' };
      const after = (await store.list({ owner: 'pager', before: gone })).map((j) => j.id);
      assert.deepEqual(after, newestFirst.filter((id) => jobs.find((j) => j.id === id)!.createdAt < t + 2));
    });

    it('pages a status-filtered list after a cursor whose job has since left the filter, skipping none of its same-millisecond neighbours', async () => {
      const t = Date.now() - 20_000;
      const jobs: JobRecord[] = [];
      for (let i = 0; i < 6; i++) jobs.push((await store.create(sampleJob({ owner: 'filtered', createdAt: t + Math.floor(i / 2) }))).job);
      const waiting = (await store.list({ owner: 'filtered', status: 'waiting' })).map((j) => j.id);
      const first = await store.list({ owner: 'filtered', status: 'waiting', limit: 3 });
      assert.deepEqual(first.map((j) => j.id), waiting.slice(0, 3));
      const last = first.at(-1)!;
      await append(last.id, [{ type: 'job:start', attempt: 1 }]); // it starts between the two pages
      const second = await store.list({ owner: 'filtered', status: 'waiting', limit: 3, before: { createdAt: last.createdAt, id: last.id } });
      assert.deepEqual(second.map((j) => j.id), waiting.slice(3), 'the rest of the list, its same-millisecond neighbour included');
    });

    it('hands out stored credentials once', async () => {
      const { job } = await store.create(sampleJob({ credentials: 'sealed' }));
      const { job: without } = await store.create(sampleJob());
      assert.equal(await store.takeCredentials(job.id), 'sealed');
      assert.equal(await store.takeCredentials(job.id), null);
      assert.equal(await store.takeCredentials(without.id), null);
      assert.equal(await store.takeCredentials('missing'), null);
    });

    it("deletes a job's credentials when it ends, however it ends, even if they were never taken", async () => {
      for (const end of [{ type: 'job:completed' }, { type: 'job:failed', reason: 'interrupted' }, { type: 'job:canceled', reason: 'x' }] as const) {
        const { job } = await store.create(sampleJob({ credentials: 'sealed' }));
        await append(job.id, [{ type: 'job:start', attempt: 1 }]);
        assert.equal((await store.get(job.id))!.status, 'running');
        await append(job.id, [end]);
        assert.equal(await store.takeCredentials(job.id), null, end.type);
      }
    });

    it('deletes old ended jobs only, never waiting or running ones', async () => {
      const old = Date.now() - 100 * 86_400_000;
      const waiting = (await store.create(sampleJob({ createdAt: old }))).job;
      const running = (await store.create(sampleJob({ createdAt: old, credentials: 'c' }))).job;
      await append(running.id, [{ type: 'job:start', attempt: 1 }]);
      const completed = (await store.create(sampleJob({ createdAt: old, credentials: 'c' }))).job;
      await append(completed.id, [{ type: 'job:completed' }]);
      const failed = (await store.create(sampleJob({ createdAt: old }))).job;
      await append(failed.id, [{ type: 'job:failed', reason: 'x' }]);
      const endedAt = (await store.get(failed.id))!.endedAt!;

      assert.equal(await store.deleteEnded({ completedBefore: endedAt - 60_000, endedBefore: endedAt - 60_000 }), 0);
      assert.equal(await store.deleteEnded({ completedBefore: Date.now() + 60_000 }), 1);
      assert.equal(await store.get(completed.id), null);
      assert.deepEqual(await store.eventsAfter(completed.id, 0, 10), []);
      assert.equal(await store.takeCredentials(completed.id), null);
      assert.ok(await store.get(failed.id), 'completedBefore spares failed jobs');

      assert.equal(await store.deleteEnded({ endedBefore: Number.MAX_SAFE_INTEGER }), 1);
      assert.equal(await store.get(failed.id), null);
      assert.equal((await store.get(waiting.id))?.status, 'waiting');
      assert.equal((await store.get(running.id))?.status, 'running');
      assert.equal((await store.eventsAfter(running.id, 0, 10)).length, 2);
      assert.equal(await store.takeCredentials(running.id), 'c');
    });

    it('keeps one secret', async () => {
      const secret = await store.secret();
      assert.equal(typeof secret, 'string');
      assert.ok(secret.length >= 32, 'at least 32 characters');
      assert.equal(await store.secret(), secret);
    });

    /** Whether `error` is the quota refusal. */
    const isQuota = (error: unknown) => isBackjobError(error) && error.code === 'BACKJOB_ERR_QUOTA' && error.status === 429;

    it('keeps the queue key with the job, never in its snapshot', async () => {
      const { job } = await store.create(sampleJob({ queueKey: 'addr:203.0.113.7' }));
      assert.equal(job.queueKey, 'addr:203.0.113.7');
      assert.equal((await store.get(job.id))!.queueKey, 'addr:203.0.113.7');
      assert.equal('queueKey' in toSnapshot(job), false);
      assert.equal(JSON.stringify(toSnapshot(job)).includes('203.0.113.7'), false);
    });

    it('refuses a create over the quota of waiting jobs of its queue key, and counts each key apart', async () => {
      for (let i = 0; i < 3; i++) await store.create(sampleJob({ queueKey: 'user:alice' }), { maxWaiting: 3 });
      await assert.rejects(store.create(sampleJob({ queueKey: 'user:alice' }), { maxWaiting: 3 }), (error: unknown) => {
        assert.ok(isQuota(error), String(error));
        assert.equal((error as { retryAfter?: number }).retryAfter, QUOTA_RETRY_AFTER_SECONDS);
        assert.match((error as Error).message, /at most 3 may wait/);
        return true;
      });
      assert.equal((await store.list({ owner: 'alice' })).length, 3, 'the refused job was not stored');
      const other = await store.create(sampleJob({ owner: 'bob', queueKey: 'user:bob' }), { maxWaiting: 3 });
      assert.equal(other.merged, false, 'another key has its own quota');
      const unlimited = await store.create(sampleJob({ queueKey: 'user:alice' }));
      assert.equal(unlimited.merged, false, 'no maxWaiting: no limit');
      await store.create(sampleJob({ queueKey: 'user:alice' }), { maxWaiting: 0 });
    });

    it('frees a place in the quota when a waiting job starts or ends, and counts delayed jobs as waiting', async () => {
      const key = { queueKey: 'addr:198.51.100.1', owner: null };
      const delayed = (await store.create(sampleJob({ ...key, runAt: Date.now() + 60_000 }), { maxWaiting: 2 })).job;
      const started = (await store.create(sampleJob(key), { maxWaiting: 2 })).job;
      await assert.rejects(store.create(sampleJob(key), { maxWaiting: 2 }), isQuota, 'a delayed job waits too');
      await append(started.id, [{ type: 'job:start', attempt: 1 }]);
      const third = (await store.create(sampleJob(key), { maxWaiting: 2 })).job;
      await assert.rejects(store.create(sampleJob(key), { maxWaiting: 2 }), isQuota, 'running jobs do not count, waiting ones do');
      await append(delayed.id, [{ type: 'job:canceled', reason: 'x' }]);
      await store.create(sampleJob(key), { maxWaiting: 2 });
      await append(started.id, [{ type: 'job:completed' }]);
      await assert.rejects(store.create(sampleJob(key), { maxWaiting: 2 }), isQuota, 'an end of a running job frees nothing');
      await append(third.id, [{ type: 'job:failed', reason: 'x' }]);
      await store.create(sampleJob(key), { maxWaiting: 2 });
    });

    it('never refuses a create that merges into a waiting job', async () => {
      const key = { queueKey: 'user:alice' };
      const first = await store.create(sampleJob({ ...key, mergeKey: 'same' }), { maxWaiting: 1 });
      await assert.rejects(store.create(sampleJob({ ...key, mergeKey: 'other' }), { maxWaiting: 1 }), isQuota);
      for (let i = 0; i < 3; i++) {
        const again = await store.create(sampleJob({ ...key, mergeKey: 'same' }), { maxWaiting: 1 });
        assert.equal(again.merged, true);
        assert.equal(again.job.id, first.job.id);
      }
    });

    it('lets no more than the quota through when many creates race', async () => {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 200 }, () => store.create(sampleJob({ queueKey: 'addr:192.0.2.9', owner: null }), { maxWaiting: 20 })),
      );
      const created = outcomes.filter((o) => o.status === 'fulfilled');
      const refused = outcomes.filter((o) => o.status === 'rejected');
      assert.equal(created.length, 20);
      assert.ok(refused.every((o) => isQuota(o.reason)), String(refused.find((o) => !isQuota(o.reason))?.reason));
      assert.equal((await store.list({ owner: null, status: 'waiting' })).length, 20);
    });

    it('keeps seqs gap-free under concurrent appends', async () => {
      const { job } = await store.create(sampleJob());
      const { job: other } = await store.create(sampleJob());
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          store.append([
            { jobId: job.id, events: [{ type: 'job:log', line: `a${i}` }, { type: 'job:progress', progress: i }] },
            { jobId: other.id, events: [{ type: 'job:log', line: `b${i}` }] },
          ]),
        ),
      );
      const events = await store.eventsAfter(job.id, 0, 1000);
      assert.deepEqual(
        events.map((e) => e.seq),
        Array.from({ length: 101 }, (_, i) => i + 1),
      );
      // Each append's events stay together and in order.
      for (let i = 1; i < events.length; i += 2) {
        assert.equal(events[i]!.type, 'job:log');
        assert.equal(events[i + 1]!.type, 'job:progress');
      }
      assert.equal((await store.get(job.id))!.seq, 101);
      assert.equal((await store.get(job.id))!.logLines, 50);
      assert.equal((await store.get(other.id))!.seq, 51);
    });
  });
}
