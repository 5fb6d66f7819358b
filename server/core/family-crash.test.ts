import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, it } from 'node:test';
import { sqlite } from '../backends/local/sqlite.js';
import { createBackJob } from '../backjob.js';
import { tempDir, waitFor } from '../testing/helpers.js';
import type { JobContext } from '../types.js';

const temp = tempDir('backjob-family-crash-');
after(() => temp.remove());

it('after kill -9 with a family mid-run: a re-run parent finds its children instead of spawning them twice, an interrupted one takes its children down', { timeout: 60_000 }, async () => {
  const file = join(temp.dir, 'jobs.db');
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../testing/family-crash-child.ts'), file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout }).once('line', resolve));
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  const { rerun, doomed, families } = JSON.parse(line) as { rerun: string; doomed: string; families: Record<string, string[]> };

  const backjob = createBackJob({ backend: sqlite({ file }), key: 'crash-test-key-0123456789abcdef', concurrency: 8 });
  const ran: string[] = [];
  try {
    backjob.define('kid', (job: JobContext, params: { n: number }) => {
      ran.push(job.id);
      return `kid ${params.n}`;
    }, { retries: 1 });
    backjob.define('parent', async (job: JobContext) => {
      const a = await job.spawn('kid', { n: 0 });
      const b = await job.spawn('kid', { n: 1 });
      return [await a.result(), await b.result()];
    }, { retries: 1 });
    backjob.define('doomed', () => 'must not run again');
    await backjob.ready;

    const parent = await waitFor(async () => {
      const job = await backjob.status(rerun);
      return job?.status === 'completed' ? job : null;
    }, 'the re-run parent to complete');
    assert.deepEqual(parent.result, ['kid 0', 'kid 1']);
    assert.equal(parent.attempt, 2);
    const kids = await backjob.list({ parent: rerun });
    assert.deepEqual(kids.map((k) => k.id).sort(), [...families[rerun]!].sort(), 'the same two children, none spawned twice');
    assert.ok(kids.every((k) => k.status === 'completed' && k.attempt === 2));

    const gone = await backjob.status(doomed);
    assert.equal(gone?.status, 'failed');
    assert.equal(gone?.errorCode, 'BACKJOB_ERR_INTERRUPTED');
    for (const id of families[doomed]!) {
      const kid = await waitFor(async () => {
        const job = await backjob.status(id);
        return job && job.status !== 'running' && job.status !== 'waiting' ? job : null;
      }, `child ${id} of the interrupted parent to end`);
      assert.equal(kid.status, 'canceled');
      assert.ok(!ran.includes(id), 'a child whose parent ended never runs again');
    }
    assert.deepEqual([...ran].sort(), [...families[rerun]!].sort());
  } finally {
    await backjob.close();
  }
});
