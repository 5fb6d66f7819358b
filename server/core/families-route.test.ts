/**
 * Steps and children from a dispatched route (`req.backjob`, through a real
 * Express app and a real socket), and the edges of a family's end: an early
 * `finish()` takes the live children down, a spawn after the end is refused.
 */
import assert from 'node:assert/strict';
import { afterEach, it } from 'node:test';
import { isBackjobError } from '../errors.js';
import { startTestApp, type TestApp } from '../testing/http-test-app.js';
import { gate, waitFor } from '../testing/helpers.js';
import type { JobContext, JobRecord } from '../types.js';

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function ended(t: TestApp, id: string): Promise<JobRecord> {
  return waitFor(async () => {
    const job = await t.backjob.status(id);
    return job && ['completed', 'failed', 'canceled'].includes(job.status) ? job : null;
  }, `job ${id} to end`, 20_000);
}

it('a dispatched route declares steps and spawns children through req.backjob, and its job waits for them', async () => {
  const release = gate();
  const t = await startTestApp({
    appRoutes: (app, backjob) => {
      backjob.define('thumb', async (_job: JobContext, params: { n: number }) => {
        await release.promise;
        return `thumb ${params.n}`;
      });
      app.post('/albums/render', async (req, res) => {
        const job = req.backjob!;
        job.steps(['Thumbnails', 'Cover']);
        job.step('Thumbnails');
        const kids = [await job.spawn('thumb', { n: 1 }), await job.spawn('thumb', { n: 2 })];
        const thumbs = await Promise.all(kids.map((kid) => kid.result()));
        job.step('Cover', { progress: 50 });
        res.end(`${thumbs.join(', ')}\n`);
      });
    },
  });
  apps.push(t);
  const { id } = await t.backjob.start({ route: '/albums/render', method: 'POST' });
  const kids = await waitFor(async () => {
    const list = await t.backjob.list({ parent: id });
    return list.length === 2 ? list : null;
  }, 'the route to spawn');
  assert.ok(kids.every((kid) => kid.parent === id && kid.root === id));
  assert.equal((await t.backjob.status(id))?.steps?.[0]?.state, 'running');
  release.open();
  const job = await ended(t, id);
  assert.equal(job.status, 'completed');
  assert.deepEqual(job.children?.map((c) => c.status), ['completed', 'completed']);
  assert.deepEqual(job.steps?.map((s) => s.state), ['completed', 'running']);
  const lines = (await t.backjob.host.backend.store.eventsAfter(id, 0, 1000)).flatMap((e) => (e.type === 'job:log' ? [e.line] : []));
  assert.deepEqual(lines, ['thumb 1, thumb 2']);
});

it('an early finish() cancels the children still running, and a spawn after the end is refused', async () => {
  let late: unknown;
  const t = await startTestApp();
  apps.push(t);
  t.backjob.define('forever', (job: JobContext) => new Promise<void>((resolve) => job.signal.addEventListener('abort', () => resolve())));
  t.backjob.define('hasty', async (job: JobContext) => {
    const kid = await job.spawn('forever');
    await waitFor(async () => (await t.backjob.status(kid.id))?.status === 'running', 'the child to run');
    await job.finish('done early');
    try {
      await job.spawn('forever');
    } catch (error) {
      late = isBackjobError(error) ? error.code : error;
    }
  });
  const { id } = await t.backjob.start({ name: 'hasty' });
  const job = await ended(t, id);
  assert.equal(job.status, 'completed');
  assert.equal(job.result, 'done early');
  const [kid] = await t.backjob.list({ parent: id });
  assert.equal((await ended(t, kid!.id)).status, 'canceled');
  assert.equal((await t.backjob.status(kid!.id))?.error, 'parent completed');
  await waitFor(() => late, 'the late spawn to be refused');
  assert.equal(late, 'BACKJOB_ERR_ENDED');
  assert.equal((await t.backjob.list({ parent: id })).length, 1, 'nothing spawned after the end');
});
