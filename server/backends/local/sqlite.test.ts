import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sqlite, SqliteStore } from './sqlite.js';
import { runStoreContract, sampleJob } from '../../testing/store-contract.js';
import type { JobEventData } from '../../types.js';

const dir = mkdtempSync(join(tmpdir(), 'backjob-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

runStoreContract('sqlite', async () => {
  const store = new SqliteStore(join(dir, `contract-${++files}.db`));
  return { store, cleanup: () => store.close() };
});

describe('SqliteStore', () => {
  it('reads a page deep behind a cursor as fast as the first: the cursor seeks the index, not a walk from the newest job', async () => {
    const store = new SqliteStore(join(dir, 'deep-list.db'));
    try {
      const jobs = 20_000;
      const ids: Array<{ id: string; createdAt: number }> = [];
      for (let i = 0; i < jobs; i++) {
        const { job } = await store.create(sampleJob({ owner: 'deep', createdAt: 1_000 + i }));
        ids.push({ id: job.id, createdAt: job.createdAt });
      }
      // Each page after the cursor of a job `depth` jobs from the newest, timed over a few reads: a ratio, never a bare time.
      const pageAfter = async (depth: number) => {
        const before = ids[jobs - 1 - depth]!;
        const began = performance.now();
        for (let k = 0; k < 20; k++) {
          const page = await store.list({ owner: 'deep', limit: 20, before });
          assert.equal(page[0]!.createdAt, before.createdAt - 1);
        }
        return performance.now() - began;
      };
      await pageAfter(10); // warm the statement and the cache
      const shallow = Math.max(await pageAfter(10), 0.5);
      const deep = await pageAfter(jobs - 100);
      // Walking the 20,000 rows before the cursor took about 18x the shallow page; seeking takes about the same.
      assert.ok(deep < shallow * 5, `a page 19,900 jobs deep took ${deep.toFixed(2)} ms against ${shallow.toFixed(2)} ms near the top`);
    } finally {
      await store.close();
    }
  });

  it('runs in WAL mode and keeps jobs, events and the secret across a reopen', async () => {
    const file = join(dir, 'reopen.db');
    const first = new SqliteStore(file);
    assert.equal(first.db.pragma('journal_mode', { simple: true }), 'wal');
    const { job } = await first.create(sampleJob({ credentials: 'sealed' }));
    await first.append([{ jobId: job.id, events: [{ type: 'job:start', attempt: 1 }, { type: 'job:log', line: 'kept' }] }]);
    const secret = await first.secret();
    await first.close();

    const second = new SqliteStore(file);
    assert.equal(await second.secret(), secret);
    assert.equal((await second.get(job.id))?.status, 'running');
    assert.deepEqual(
      (await second.eventsAfter(job.id, 0, 10)).map((e) => e.type),
      ['job:created', 'job:start', 'job:log'],
    );
    assert.equal(await second.takeCredentials(job.id), 'sealed');
    await second.close();
  });

  it('migrates a database from before quotas: old waiting jobs get their owner as queue key and count against the quota', async () => {
    const file = join(dir, 'before-quotas.db');
    const old = new Database(file);
    // The jobs table as the version before quotas created it, with one waiting job each for alice and the app.
    old.exec(`CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, owner TEXT, merge_key TEXT,
      created_at INTEGER NOT NULL, ended_at INTEGER, record TEXT NOT NULL)`);
    const insert = old.prepare('INSERT INTO jobs (id, status, owner, merge_key, created_at, ended_at, record) VALUES (?, ?, ?, ?, ?, NULL, ?)');
    for (const [id, owner] of [['old-alice', 'alice'], ['old-app', null]] as const) {
      const record = { ...sampleJob({ id, owner }), status: 'waiting', progress: 0, text: '', seq: 1, logLines: 0, attempt: 0, updatedAt: 1 };
      insert.run(id, 'waiting', owner, null, 1, JSON.stringify(record));
    }
    old.close();

    const store = new SqliteStore(file);
    try {
      const rows = store.db.prepare('SELECT id, queue_key AS key FROM jobs ORDER BY id').all();
      assert.deepEqual(rows, [
        { id: 'old-alice', key: 'user:alice' },
        { id: 'old-app', key: 'app' },
      ]);
      const plan = store.db.prepare("EXPLAIN QUERY PLAN SELECT COUNT(*) FROM jobs WHERE queue_key = ? AND status = 'waiting'").all('user:alice');
      assert.match(JSON.stringify(plan), /jobs_waiting_by_queue_key/, 'the count uses its index');
      await assert.rejects(store.create(sampleJob({ queueKey: 'user:alice' }), { maxWaiting: 1 }), /at most 1 may wait/);
      await store.create(sampleJob({ queueKey: 'user:bob' }), { maxWaiting: 1 });
    } finally {
      await store.close();
    }
    // Opening again migrates nothing twice.
    const again = new SqliteStore(file);
    assert.equal((await again.list({})).length, 3);
    await again.close();
  });

  it('reports jobs left running as orphans', async () => {
    const backend = sqlite({ file: join(dir, 'orphans.db') });
    const { job: running } = await backend.store.create(sampleJob());
    await backend.store.create(sampleJob());
    await backend.store.append([{ jobId: running.id, events: [{ type: 'job:start', attempt: 1 }] }]);
    assert.deepEqual(
      (await backend.orphans()).map((j) => j.id),
      [running.id],
    );
    await backend.close();
  });

  it('keeps the status indexes right when an append leaves the status as it was', async () => {
    const store = new SqliteStore(join(dir, 'status-index.db'));
    try {
      const { job } = await store.create(sampleJob({ mergeKey: 'm' }));
      await store.append([{ jobId: job.id, events: [{ type: 'job:start', attempt: 1 }] }]);
      for (let i = 1; i <= 5; i++) await store.append([{ jobId: job.id, events: [{ type: 'job:progress', progress: i * 10 }] }]);
      const byStatus = async (status: 'waiting' | 'running' | 'completed') => (await store.list({ status })).map((j) => j.id);
      assert.deepEqual(await byStatus('running'), [job.id]);
      assert.deepEqual(await byStatus('waiting'), []);
      // Still active: the merge key's partial index holds it.
      assert.equal((await store.create(sampleJob({ mergeKey: 'm' }))).merged, true);
      await store.append([{ jobId: job.id, events: [{ type: 'job:completed' }] }]);
      assert.deepEqual(await byStatus('running'), []);
      assert.deepEqual(await byStatus('completed'), [job.id]);
      assert.equal((await store.create(sampleJob({ mergeKey: 'm' }))).merged, false);
      assert.equal(store.db.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      await store.close();
    }
  });

  it('folds into the row another connection wrote, not the one it last wrote itself', async () => {
    const file = join(dir, 'two-connections.db');
    const first = new SqliteStore(file);
    const second = new SqliteStore(file);
    try {
      const { job } = await first.create(sampleJob());
      await first.append([{ jobId: job.id, events: [{ type: 'job:start', attempt: 1 }] }]);
      await second.append([{ jobId: job.id, events: [{ type: 'job:progress', progress: 50 }] }]);
      const [result] = await first.append([{ jobId: job.id, events: [{ type: 'job:log', line: 'after' }] }]);
      assert.deepEqual(result!.events.map((e) => e.seq), [4]);
      assert.equal(result!.job?.progress, 50);
      await second.append([{ jobId: job.id, events: [{ type: 'job:canceled', reason: 'stop' }] }]);
      const [late] = await first.append([{ jobId: job.id, events: [{ type: 'job:log', line: 'too late' }] }]);
      assert.deepEqual(late!.events, []);
      assert.equal(late!.job?.status, 'canceled');
      assert.deepEqual((await first.eventsAfter(job.id, 0, 10)).map((e) => e.type), ['job:created', 'job:start', 'job:progress', 'job:log', 'job:canceled']);
    } finally {
      await first.close();
      await second.close();
    }
  });

  it('forgets what a failed append folded: the next append starts from the stored row', async () => {
    const store = new SqliteStore(join(dir, 'rolled-back.db'));
    try {
      const { job: a } = await store.create(sampleJob());
      const { job: b } = await store.create(sampleJob());
      await store.append([{ jobId: a.id, events: [{ type: 'job:start', attempt: 1 }] }]);
      // `a` is folded first; `b`'s event cannot be serialized, so the whole commit rolls back.
      const unserializable = { type: 'job:completed', result: 1n } as unknown as JobEventData;
      await assert.rejects(store.append([{ jobId: a.id, events: [{ type: 'job:progress', progress: 10 }] }, { jobId: b.id, events: [unserializable] }]));
      assert.equal((await store.get(a.id))?.seq, 2);
      const [result] = await store.append([{ jobId: a.id, events: [{ type: 'job:log', line: 'next' }] }]);
      assert.deepEqual(result!.events.map((e) => e.seq), [3]);
      assert.equal(result!.job?.progress, 0);
      assert.equal((await store.get(a.id))?.seq, 3);
    } finally {
      await store.close();
    }
  });

  it('checkpoints on a thread of its own: commits reach the database file while the writer never checkpoints', async () => {
    const file = join(dir, 'checkpoint-thread.db');
    const store = new SqliteStore(file);
    try {
      // The writer's own checkpoint waits for 16,384 pages of WAL; 100 creates write about 700.
      assert.equal(store.db.pragma('wal_autocheckpoint', { simple: true }), 16_384);
      const before = statSync(file).size;
      for (let i = 0; i < 100; i++) await store.create(sampleJob());
      // Until a checkpoint, every new page is in the WAL only: the file grows when the thread copies them.
      const deadline = Date.now() + 5_000;
      while (statSync(file).size === before && Date.now() < deadline) await sleep(20);
      assert.ok(statSync(file).size > before, `the database file stayed at ${before} bytes`);
      assert.equal((await store.list({})).length, 100);
    } finally {
      await store.close();
    }
    // The thread's connection closed first, so the writer's close, the last one, removed the WAL.
    assert.equal(existsSync(`${file}-wal`), false);
  });

  it('never keeps a process alive: one that leaves its store open, its checkpoint thread started, still exits', async () => {
    const file = join(dir, 'left-open.db');
    // A job's commits start the checkpoint thread (a process that only reads never starts one).
    const script = `import { sqlite } from ${JSON.stringify(join(import.meta.dirname, 'sqlite.ts'))};
      import { createBackJob } from ${JSON.stringify(join(import.meta.dirname, '../../backjob.ts'))};
      const backjob = createBackJob({ backend: sqlite({ file: ${JSON.stringify(file)} }), key: 'left-open-test-key-0123456789abcdef' });
      backjob.define('work', async (job) => job.update(50));
      await backjob.start({ name: 'work' });
      await new Promise((resolve) => backjob.once('job:completed', resolve));
      await new Promise((resolve) => setTimeout(resolve, 200));
      console.log('opened');`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(timer);
    assert.equal(out.trim(), 'opened');
    assert.equal(code, 0, 'the process was still running after 20 s');
  });

  it('puts backjob.db in the working directory by default', async () => {
    const cwd = process.cwd();
    const home = mkdtempSync(join(dir, 'cwd-'));
    process.chdir(home);
    try {
      const backend = sqlite();
      await backend.store.secret();
      await backend.close();
      assert.ok(existsSync(join(home, 'backjob.db')));
    } finally {
      process.chdir(cwd);
    }
  });
});
