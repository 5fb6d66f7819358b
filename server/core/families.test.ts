/**
 * Steps and child jobs, on every backend, through the public API: what a
 * handler reports, what the parent's log and row show, how failures and
 * cancels travel through a family, and who may watch a child.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createBackJob, type BackJobServer } from '../backjob.js';
import { isBackjobError } from '../errors.js';
import { everyBackend } from '../testing/backends.js';
import { gate, waitFor } from '../testing/helpers.js';
import type { BackJobOptions, JobContext, JobEvent, JobRecord } from '../types.js';

const { backends: BACKENDS } = everyBackend('families');
const KEY = 'families-test-key-0123456789abcdef';
const open: BackJobServer[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
});

async function ended(backjob: BackJobServer, id: string): Promise<JobRecord> {
  return waitFor(async () => {
    const job = await backjob.status(id);
    return job && ['completed', 'failed', 'canceled'].includes(job.status) ? job : null;
  }, `job ${id} to end`, 20_000);
}

async function events(backjob: BackJobServer, id: string): Promise<JobEvent[]> {
  return backjob.host.backend.store.eventsAfter(id, 0, 100_000);
}

function untilAborted(job: JobContext): Promise<void> {
  return new Promise((resolve) => job.signal.addEventListener('abort', () => resolve(), { once: true }));
}

for (const [kind, backend] of Object.entries(BACKENDS)) {
  describe(`families (${kind})`, () => {
    function make(options: BackJobOptions = {}): BackJobServer {
      const backjob = createBackJob({ backend: backend(), key: KEY, ...options });
      open.push(backjob);
      return backjob;
    }

    it('stores steps as events, derives the progress from them, and keeps only the latest move of a step per write', async () => {
      const backjob = make();
      backjob.define('pipeline', async (job: JobContext) => {
        job.steps(['Download', { name: 'Transform', title: 'Transform rows', weight: 2 }, 'Upload']);
        job.step('Download', { progress: 50 });
        await job.flush();
        for (let p = 1; p <= 100; p++) job.step('Transform', { progress: p, text: `row ${p}` });
        await job.flush();
        job.step('Upload', { state: 'skipped' });
        return 'ok';
      });
      const { id } = await backjob.start({ name: 'pipeline' });
      const job = await ended(backjob, id);
      assert.equal(job.status, 'completed');
      assert.deepEqual(
        job.steps?.map((s) => [s.name, s.state, s.progress]),
        [['Download', 'completed', 50], ['Transform', 'running', 100], ['Upload', 'skipped', null]],
      );
      assert.equal(job.steps?.[1]?.title, 'Transform rows');
      const log = await events(backjob, id);
      const moves = log.filter((e) => e.type === 'job:step' && e.name === 'Transform');
      assert.ok(moves.length < 20, `${moves.length} stored moves for 100 calls: coalesced`);
      assert.deepEqual(moves.at(-1), { ...moves.at(-1), progress: 100, text: 'row 100' });
      const progressAfterDownload = log.find((e) => e.type === 'job:step' && e.name === 'Download');
      assert.ok(progressAfterDownload, 'the first move is stored');
    });

    it('refuses an undeclared step and bad declarations with BACKJOB_ERR_INVALID, and the job goes on', async () => {
      const backjob = make();
      const errors: string[] = [];
      backjob.define('picky', async (job: JobContext) => {
        const attempts: Array<() => void> = [
          () => job.step('Nope'),
          () => job.steps([]),
          () => job.steps(['a', 'a']),
          () => job.steps(Array.from({ length: 101 }, (_, i) => `s${i}`)),
          () => job.steps(['x'.repeat(201)]),
          () => job.steps([{ name: 'w', weight: -1 }]),
          () => job.steps(['ok']),
          () => job.step('ok', { state: 'exploded' as never }),
          () => job.step('ok', { progress: Number.NaN }),
          () => job.step('ok', { colour: 'red' } as never),
        ];
        for (const attempt of attempts) {
          try {
            attempt();
            errors.push('none');
          } catch (error) {
            errors.push(isBackjobError(error) ? error.code : String(error));
          }
        }
        job.step('ok', { state: 'completed' });
      });
      const { id } = await backjob.start({ name: 'picky' });
      const job = await ended(backjob, id);
      assert.deepEqual(errors, [...Array(6).fill('BACKJOB_ERR_INVALID'), 'none', ...Array(3).fill('BACKJOB_ERR_INVALID')]);
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.steps?.map((s) => s.state), ['completed']);
    });

    it('runs children as jobs of their own, aggregates their progress on the parent by job:child events, and hands their results', async () => {
      const backjob = make({ identify: (req) => req.headers['x-user'] as string });
      const half = gate();
      backjob.define('part', async (job: JobContext, params: { n: number }) => {
        job.update({ progress: 50, text: `part ${params.n}` });
        await job.flush();
        await half.promise;
        return params.n * 10;
      });
      let childIds: string[] = [];
      backjob.define('whole', async (job: JobContext) => {
        const a = await job.spawn('part', { n: 1 });
        const b = await job.spawn('part', { n: 2 }, { weight: 3, title: 'The big part' });
        childIds = [a.id, b.id];
        return { sum: ((await a.result()) as number) + ((await b.result()) as number) };
      });
      const { id } = await backjob.start({ name: 'whole' }, { as: { headers: { 'x-user': 'alice' } } as never });
      const halfway = await waitFor(async () => {
        const parent = await backjob.status(id);
        return parent?.children?.length === 2 && parent.children.every((c) => c.progress === 50) ? parent : null;
      }, 'both children at 50 on the parent');
      assert.equal(halfway.progress, 50);
      assert.equal(halfway.children?.[1]?.weight, 3);
      assert.equal(halfway.children?.[1]?.title, 'The big part');
      assert.equal(halfway.children?.[0]?.text, 'part 1');
      half.open();
      const parent = await ended(backjob, id);
      assert.equal(parent.status, 'completed');
      assert.deepEqual(parent.result, { sum: 30 });
      assert.deepEqual(parent.children?.map((c) => c.status), ['completed', 'completed']);
      for (const childId of childIds) {
        const child = (await backjob.status(childId))!;
        assert.equal(child.parent, id);
        assert.equal(child.root, id);
        assert.equal(child.owner, 'alice');
        assert.equal(child.queueKey, 'user:alice');
        assert.ok((await events(backjob, childId)).some((e) => e.type === 'job:progress'), 'a log of its own');
      }
      assert.deepEqual((await backjob.list({ parent: id })).map((c) => c.id).sort(), [...childIds].sort());
      const log = await events(backjob, id);
      assert.ok(log.filter((e) => e.type === 'job:child').length >= 4, 'spawned, progressed and ended, on the parent log');
    });

    it('fails the parent when a child fails, unless the child was optional or its result was asked for', async () => {
      const backjob = make();
      backjob.define('breaks', () => {
        throw new Error('disk full');
      });
      backjob.define('works', () => 'fine');
      let abortedWith: unknown;
      backjob.define('careless', async (job: JobContext) => {
        await job.spawn('breaks');
        await untilAborted(job);
        abortedWith = job.signal.reason;
      });
      backjob.define('tolerant', async (job: JobContext) => {
        await job.spawn('breaks', undefined, { optional: true });
        const ok = await job.spawn('works');
        return { ok: await ok.result() };
      });
      backjob.define('careful', async (job: JobContext) => {
        const child = await job.spawn('breaks');
        try {
          await child.result();
          return 'unexpected';
        } catch (error) {
          return { caught: isBackjobError(error) ? error.code : String(error) };
        }
      });
      const careless = await ended(backjob, (await backjob.start({ name: 'careless' })).id);
      assert.equal(careless.status, 'failed');
      assert.equal(careless.errorCode, 'BACKJOB_ERR_CHILD_FAILED');
      assert.match(careless.error!, /disk full/);
      await waitFor(() => abortedWith, "the parent's handler to hear of it");
      assert.equal(isBackjobError(abortedWith) && abortedWith.code, 'BACKJOB_ERR_CHILD_FAILED');
      const tolerant = await ended(backjob, (await backjob.start({ name: 'tolerant' })).id);
      assert.equal(tolerant.status, 'completed');
      assert.deepEqual(tolerant.result, { ok: 'fine' });
      assert.deepEqual(tolerant.children?.map((c) => c.status), ['failed', 'completed']);
      const careful = await ended(backjob, (await backjob.start({ name: 'careful' })).id);
      assert.deepEqual(careful.result, { caught: 'BACKJOB_ERR_CHILD_FAILED' });
    });

    it('waits for children a handler left running before it completes, and hands outcomes to waitForChildren', async () => {
      const backjob = make();
      const release = gate();
      backjob.define('slow', async () => {
        await release.promise;
        return 'late';
      });
      backjob.define('fails', () => {
        throw new Error('nope');
      });
      backjob.define('leaves', async (job: JobContext) => {
        await job.spawn('slow');
        return 'returned early';
      });
      backjob.define('collects', async (job: JobContext) => {
        await job.spawn('slow');
        await job.spawn('fails');
        return (await job.waitForChildren()).map((o) => [o.status, o.result ?? o.error]);
      });
      const leaves = await backjob.start({ name: 'leaves' });
      const collects = await backjob.start({ name: 'collects' });
      await waitFor(async () => (await backjob.status(leaves.id))?.children?.[0]?.status === 'running', 'the child to run');
      assert.equal((await backjob.status(leaves.id))?.status, 'running', 'the parent waits for its child');
      release.open();
      assert.equal((await ended(backjob, leaves.id)).result, 'returned early');
      assert.deepEqual((await ended(backjob, collects.id)).result, [['completed', 'late'], ['failed', 'nope']]);
    });

    it('cancels every live descendant when the parent is canceled, and a child ending afterwards changes nothing on the parent', async () => {
      const backjob = make();
      const aborted: string[] = [];
      backjob.define('leaf', async (job: JobContext) => {
        await untilAborted(job);
        aborted.push(job.id);
      });
      backjob.define('middle', async (job: JobContext) => {
        await job.spawn('leaf');
        await untilAborted(job);
      });
      backjob.define('top', async (job: JobContext) => {
        await job.spawn('middle');
        await job.spawn('leaf');
        await untilAborted(job);
      });
      const { id } = await backjob.start({ name: 'top' });
      const family = await waitFor(async () => {
        const children = await backjob.list({ parent: id });
        const grandchildren = children.length === 2 ? await backjob.list({ parent: children.find((c) => c.name === 'middle')!.id }) : [];
        const all = [...children, ...grandchildren];
        return all.length === 3 && all.every((c) => c.status === 'running') ? all : null;
      }, 'the family to run');
      assert.ok(family.every((member) => member.root === id));
      assert.equal(await backjob.cancel(id), true);
      for (const member of family) assert.equal((await ended(backjob, member.id)).status, 'canceled');
      await waitFor(() => aborted.length === 2, 'both leaves to hear of it');
      const parent = (await backjob.status(id))!;
      assert.equal(parent.status, 'canceled');
      const seq = parent.seq;
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await backjob.status(id))?.seq, seq, "the children's ends were dropped on the ended parent");
    });

    it('lets the parent’s owner and the root’s watch token watch a child, nobody else', async () => {
      const backjob = make({ identify: (req) => req.headers['x-user'] as string });
      backjob.define('leaf', untilAborted);
      backjob.define('mid', async (job: JobContext) => {
        await job.spawn('leaf');
        await untilAborted(job);
      });
      backjob.define('top', async (job: JobContext) => {
        await job.spawn('mid');
        await untilAborted(job);
      });
      const top = await backjob.start({ name: 'top' }, { as: { headers: { 'x-user': 'alice' } } as never });
      const mid = await waitFor(async () => (await backjob.list({ parent: top.id }))[0], 'the child');
      const leaf = await waitFor(async () => (await backjob.list({ parent: mid.id }))[0], 'the grandchild');
      const other = await backjob.start({ name: 'leaf' });
      for (const id of [mid.id, leaf.id]) {
        assert.equal((await backjob.authorize(id, { principal: 'alice' }))?.id, id);
        assert.equal((await backjob.authorize(id, { token: top.token }))?.id, id);
        assert.equal(await backjob.authorize(id, { principal: 'bob' }), null);
        assert.equal(await backjob.authorize(id, { token: other.token }), null);
      }
      assert.equal((await backjob.authorize(leaf.id, { token: backjob.tokenFor(mid.id) }))?.id, leaf.id, "the parent's token too");
      assert.equal(await backjob.authorize(top.id, { token: backjob.tokenFor(mid.id) }), null, "a child's token never opens its parent");
      await backjob.cancel(top.id);
      await backjob.cancel(other.id);
    });
  });
}
