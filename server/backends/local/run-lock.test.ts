import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { createBackJob, type BackJobServer } from '../../backjob.js';
import { sqlite } from './sqlite.js';
import { tempDir, waitFor } from '../../testing/helpers.js';

const KEY = 'run-lock-test-key-0123456789abcdef';
const temp = tempDir('backjob-run-lock-');
after(() => temp.remove());
let files = 0;
const newFile = () => join(temp.dir, `jobs-${++files}.db`);

/** A BackJob on `file` whose `slow` job runs until `release` resolves. */
function open(file: string, options: { lockTimeout?: number; worker?: boolean } = {}) {
  const { lockTimeout, worker } = options;
  const backjob = createBackJob({ backend: sqlite({ file, ...(lockTimeout === undefined ? {} : { lockTimeout }) }), key: KEY, ...(worker === undefined ? {} : { worker }) });
  const errors: Error[] = [];
  backjob.on('error', (error) => errors.push(error));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  backjob.define('slow', async () => {
    await released;
    return 'done';
  });
  return { backjob, errors, release };
}

async function ended(backjob: BackJobServer, id: string) {
  return waitFor(async () => {
    const job = await backjob.status(id);
    return job && ['completed', 'failed', 'canceled'].includes(job.status) ? job : null;
  }, `job ${id} to end`);
}

describe('sqlite: one process runs a file’s jobs', () => {
  it("a second BackJob on the same file refuses, instead of failing the first one's running job as interrupted", async () => {
    const file = newFile();
    const first = open(file);
    const second = open(file, { lockTimeout: 0.3 });
    try {
      const { id } = await first.backjob.start({ name: 'slow' });
      await waitFor(async () => (await first.backjob.status(id))?.status === 'running', 'the job to run');
      await assert.rejects(second.backjob.ready, (error: Error & { code?: string }) => {
        assert.equal(error.code, 'BACKJOB_ERR_IN_USE');
        // Both in this process, as after a hot reload that created a second BackJob on the file.
        assert.match(error.message, /another BackJob of this process runs the jobs of .*jobs-\d+\.db/);
        assert.match(error.message, /one BackJob per file/);
        return true;
      });
      await assert.rejects(second.backjob.start({ name: 'slow' }), { code: 'BACKJOB_ERR_IN_USE' });
      assert.equal((await first.backjob.status(id))?.status, 'running', 'the first one’s job still runs');
      first.release();
      const job = await ended(first.backjob, id);
      assert.equal(job.status, 'completed', `ended ${job.status}: ${job.error ?? ''}`);
      assert.equal(job.result, 'done');
    } finally {
      await second.backjob.close();
      await first.backjob.close();
    }
  });

  it('a restart that overlaps the old process’s shutdown waits for it, then takes over its waiting jobs', async () => {
    const file = newFile();
    const old = open(file);
    const { id } = await old.backjob.start({ name: 'slow' }, { delay: 0.6 });
    const next = open(file, { lockTimeout: 10 });
    let ready = false;
    void next.backjob.ready.then(() => (ready = true));
    try {
      await sleep(300);
      assert.equal(ready, false, 'not ready while the old process runs the jobs');
      await old.backjob.close();
      await waitFor(async () => ready, 'the new process to take over');
      next.release();
      const job = await ended(next.backjob, id);
      assert.equal(job.status, 'completed', `ended ${job.status}: ${job.error ?? ''}`);
      assert.deepEqual(next.errors.map(String), []);
    } finally {
      await next.backjob.close();
    }
  });

  it('close() during the wait returns at once, not after lockTimeout', async () => {
    const file = newFile();
    const first = open(file);
    await first.backjob.ready;
    const waiting = open(file, { lockTimeout: 30 });
    try {
      await sleep(150);
      const began = Date.now();
      await waiting.backjob.close();
      assert.ok(Date.now() - began < 2_000, `close took ${Date.now() - began} ms`);
      await assert.rejects(waiting.backjob.ready, { code: 'BACKJOB_ERR_CLOSED' });
    } finally {
      await first.backjob.close();
    }
  });

  it('a process that runs no jobs (worker: false) shares the file', async () => {
    const file = newFile();
    const runner = open(file);
    const web = open(file, { worker: false, lockTimeout: 0 });
    try {
      await runner.backjob.ready;
      await web.backjob.ready;
      const { id } = await runner.backjob.start({ name: 'slow' });
      assert.equal((await web.backjob.status(id))?.name, 'slow');
      runner.release();
      assert.equal((await ended(runner.backjob, id)).status, 'completed');
    } finally {
      await web.backjob.close();
      await runner.backjob.close();
    }
  });

  it('another process holding the file is refused; once it is killed (kill -9), the next start-up takes over at once', async () => {
    const file = newFile();
    const script = `import { sqlite } from ${JSON.stringify(join(import.meta.dirname, 'sqlite.ts'))};
      import { createBackJob } from ${JSON.stringify(join(import.meta.dirname, '../../backjob.ts'))};
      const backjob = createBackJob({ backend: sqlite({ file: ${JSON.stringify(file)} }), key: ${JSON.stringify(KEY)} });
      backjob.define('slow', () => new Promise(() => {}));
      const { id } = await backjob.start({ name: 'slow' });
      console.log(id);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    try {
      const [line] = (await once(child.stdout!, 'data')) as [Buffer];
      const id = line.toString().trim();
      const refused = open(file, { lockTimeout: 0 });
      await assert.rejects(refused.backjob.ready, { code: 'BACKJOB_ERR_IN_USE', message: /another process runs the jobs of .*use redis\(\)/ });
      await refused.backjob.close();

      child.kill('SIGKILL');
      await once(child, 'exit');
      const next = open(file, { lockTimeout: 0 });
      try {
        await next.backjob.ready;
        const job = await ended(next.backjob, id);
        assert.equal(job.status, 'failed');
        assert.equal(job.errorCode, 'BACKJOB_ERR_INTERRUPTED');
      } finally {
        await next.backjob.close();
      }
    } finally {
      clearTimeout(killer);
      child.kill('SIGKILL');
    }
  });

  it('an in-memory database (:memory:) needs no lock, and no lock file appears in the working directory', async () => {
    const cwd = process.cwd();
    const home = mkdtempSync(join(temp.dir, 'cwd-'));
    process.chdir(home);
    try {
      const first = open(':memory:');
      const second = open(':memory:', { lockTimeout: 0 });
      try {
        await Promise.all([first.backjob.ready, second.backjob.ready]);
        const { id } = await first.backjob.start({ name: 'slow' });
        first.release();
        assert.equal((await ended(first.backjob, id)).status, 'completed');
      } finally {
        await Promise.all([first.backjob.close(), second.backjob.close()]);
      }
      assert.deepEqual(readdirSync(home), []);
    } finally {
      process.chdir(cwd);
    }
  });

  it('refuses a lockTimeout that is not a number of seconds', () => {
    assert.throws(() => sqlite({ file: newFile(), lockTimeout: -1 }), { code: 'BACKJOB_ERR_INVALID', message: /lockTimeout/ });
  });
});
