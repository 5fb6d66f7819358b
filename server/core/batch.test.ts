/**
 * Batches (`start([...])`) on every backend: one job whose members are its
 * children, ending with its last member; the quota counts members, the
 * concurrency limits them, and the batch holds no slot of its own.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, it } from 'node:test';
import { createBackJob, type BackJobServer } from '../backjob.js';
import { isBackjobError } from '../errors.js';
import { everyBackend } from '../testing/backends.js';
import { gate, waitFor } from '../testing/helpers.js';
import type { BackJobOptions, JobContext, JobRecord } from '../types.js';

const { backends: BACKENDS } = everyBackend('batch');
const KEY = 'batch-test-key-0123456789abcdef';
const open: BackJobServer[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
});

const asUser = (user: string) => ({ headers: { 'x-user': user } }) as unknown as IncomingMessage;

async function ended(backjob: BackJobServer, id: string): Promise<JobRecord> {
  return waitFor(async () => {
    const job = await backjob.status(id);
    return job && ['completed', 'failed', 'canceled'].includes(job.status) ? job : null;
  }, `job ${id} to end`, 30_000);
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'none';
  } catch (error) {
    return isBackjobError(error) ? error.code : String(error);
  }
}

for (const [kind, backend] of Object.entries(BACKENDS)) {
  describe(`batches (${kind})`, () => {
    function make(options: BackJobOptions = {}): BackJobServer {
      const backjob = createBackJob({ backend: backend(), key: KEY, identify: (req) => req.headers['x-user'] as string, ...options });
      open.push(backjob);
      return backjob;
    }

    it('runs members as the batch’s children under the concurrency limit, the batch holding no slot, and completes with their outcomes', async () => {
      const backjob = make({ concurrency: 1 });
      let running = 0;
      let most = 0;
      backjob.define('file', async (job: JobContext, params: { n: number }) => {
        most = Math.max(most, ++running);
        job.update(50);
        await job.flush();
        await new Promise((r) => setTimeout(r, 5));
        running--;
        return `file ${params.n}`;
      });
      const specs = Array.from({ length: 6 }, (_, n) => ({ name: 'file', params: { n }, ...(n === 0 ? { weight: 5, title: 'The big one' } : {}) }));
      const { id, token, merged } = await backjob.start(specs, { title: 'Export 6 files' });
      assert.equal(merged, false);
      assert.equal(token, backjob.tokenFor(id));
      const batch = await ended(backjob, id);
      assert.equal(batch.status, 'completed');
      assert.equal(batch.batch, true);
      assert.equal(batch.title, 'Export 6 files');
      assert.equal(batch.progress, 100);
      assert.equal(most, 1, 'one member at a time: the batch itself holds no slot');
      const outcomes = (batch.result as { members: Array<{ id: string; status: string; result: unknown }> }).members;
      assert.deepEqual(outcomes.map((o) => [o.status, o.result]), specs.map((_, n) => ['completed', `file ${n}`]));
      assert.equal(batch.children?.length, 6);
      assert.equal(batch.children?.[0]?.weight, 5);
      assert.equal(batch.children?.[0]?.title, 'The big one');
      const members = await backjob.list({ parent: id });
      assert.deepEqual(members.map((m) => m.id).sort(), outcomes.map((o) => o.id).sort());
      assert.ok(members.every((m) => m.parent === id && m.root === id && m.owner === null));
      assert.equal((await backjob.authorize(members[0]!.id, { token }))?.id, members[0]!.id, "the batch's token opens its members");
    });

    it('shows the members’ progress as its own while they run, and fails when one of them fails', async () => {
      const backjob = make({ concurrency: 3 });
      const release = gate();
      backjob.define('step', async (job: JobContext, params: { fail?: boolean }) => {
        job.update(40);
        await job.flush();
        await release.promise;
        if (params.fail) throw new Error('member broke');
        return 'ok';
      });
      const { id } = await backjob.start([{ name: 'step', params: {} }, { name: 'step', params: { fail: true } }, { name: 'step', params: {} }]);
      const live = await waitFor(async () => {
        const batch = await backjob.status(id);
        return batch?.children?.length === 3 && batch.children.every((c) => c.progress === 40) ? batch : null;
      }, 'the members at 40 on the batch');
      assert.equal(live.status, 'running');
      assert.equal(live.progress, 40);
      release.open();
      const batch = await ended(backjob, id);
      assert.equal(batch.status, 'failed');
      assert.equal(batch.errorCode, 'BACKJOB_ERR_CHILD_FAILED');
      assert.equal(batch.error, '1 of 3 members failed');
      assert.deepEqual(batch.children?.map((c) => c.status), ['completed', 'failed', 'completed']);
    });

    it('keeps the latest news of each member per write on the batch’s log, not one event per update', async () => {
      const backjob = make({ concurrency: 5 });
      backjob.define('chatty', async (job: JobContext) => {
        for (let i = 1; i <= 50; i++) {
          job.update(i * 2);
          if (i % 10 === 0) await job.flush();
        }
        return 'ok';
      });
      const { id } = await backjob.start(Array.from({ length: 5 }, () => ({ name: 'chatty' })));
      const batch = await ended(backjob, id);
      assert.equal(batch.status, 'completed');
      const news = (await backjob.host.backend.store.eventsAfter(id, 0, 100_000)).filter((e) => e.type === 'job:child');
      assert.ok(news.length >= 10, 'each member created and ended on the batch');
      assert.ok(news.length < 5 * 50, `${news.length} job:child events for 250 updates`);
    });

    it('cancels its members when canceled, and ends canceled', async () => {
      const backjob = make({ concurrency: 2 });
      backjob.define('forever', (job: JobContext) => new Promise<void>((resolve) => job.signal.addEventListener('abort', () => resolve())));
      const { id } = await backjob.start([{ name: 'forever' }, { name: 'forever' }, { name: 'forever' }]);
      await waitFor(async () => (await backjob.list({ parent: id, status: 'running' })).length === 2, 'two members to run');
      assert.equal(await backjob.cancel(id), true);
      const members = await backjob.list({ parent: id });
      for (const member of members) assert.equal((await ended(backjob, member.id)).status, 'canceled');
      assert.equal((await backjob.status(id))?.status, 'canceled');
    });

    it('lets close() wait for the cancel of its members: none is left waiting to run at the next start', async () => {
      const backjob = make({ concurrency: 1 });
      backjob.define('forever', (job: JobContext) => new Promise<void>((resolve) => job.signal.addEventListener('abort', () => resolve())));
      const ends = new Map<string, string>();
      const record = (job: JobRecord) => void ends.set(job.id, job.status);
      backjob.on('job:canceled', record).on('job:failed', record).on('job:completed', record);
      const { id } = await backjob.start(Array.from({ length: 8 }, () => ({ name: 'forever' })));
      await waitFor(async () => (await backjob.list({ parent: id, status: 'running' })).length === 1, 'a member to run');
      const members = await backjob.list({ parent: id });
      assert.equal(members.length, 8);
      assert.equal(await backjob.cancel(id), true);
      await backjob.close();
      for (const member of members) assert.equal(ends.get(member.id), 'canceled', `member ${member.id} was canceled before close() resolved`);
    });

    it('counts members against the quota of a request start, refusing a batch that cannot fit and creating nothing of it', async () => {
      const backjob = make({ worker: false, maxWaitingPerOwner: 3 });
      backjob.define('work', () => 'done');
      const member = { name: 'work' };
      assert.equal(await refusal(backjob.start([member, member, member, member], { as: asUser('alice') })), 'BACKJOB_ERR_QUOTA');
      assert.deepEqual(await backjob.list({ owner: 'alice' }), [], 'nothing created');
      const first = await backjob.start([member, member], { as: asUser('alice') });
      assert.equal((await backjob.list({ parent: first.id })).length, 2);
      // Two of alice's members wait: a batch of two more is refused part-way, and ends canceled with what it made.
      assert.equal(await refusal(backjob.start([member, member], { as: asUser('alice') })), 'BACKJOB_ERR_QUOTA');
      const waiting = await backjob.list({ owner: 'alice', status: 'waiting' });
      assert.equal(waiting.length, 2, 'only the first batch’s members still wait');
      assert.ok(waiting.every((job) => job.parent === first.id));
      // Bob has a quota of his own; the app's own starts have none.
      assert.equal(await refusal(backjob.start([member, member, member], { as: asUser('bob') })), 'none');
      assert.equal(await refusal(backjob.start(Array.from({ length: 10 }, () => member))), 'none');
    });

    it('checks every member before creating anything: at most 1,000, no nesting, known jobs, sane weights and titles', async () => {
      const backjob = make({ worker: false });
      backjob.define('work', () => 'done');
      const bad: Array<[unknown, unknown?]> = [
        [[]],
        [Array.from({ length: 1001 }, () => ({ name: 'work' }))],
        [[{ name: 'work' }, [{ name: 'work' }]]],
        [[{ name: 'work' }, { batch: [{ name: 'work' }] }]],
        [[{ name: 'work', weight: 0 }]],
        [[{ name: 'work', title: '' }]],
        [[{ name: 'work' }], { title: 'x'.repeat(201) }],
        [[{ name: 'work' }], { colour: 'red' }],
      ];
      for (const [specs, options] of bad) {
        assert.equal(await refusal(backjob.start(specs as never, options as never)), 'BACKJOB_ERR_INVALID', JSON.stringify(specs).slice(0, 80));
      }
      assert.equal(await refusal(backjob.start([{ name: 'work' }, { name: 'nope' }])), 'BACKJOB_ERR_UNKNOWN_JOB');
      assert.deepEqual(await backjob.list({}), [], 'nothing created by a refused batch');
    });
  });
}
