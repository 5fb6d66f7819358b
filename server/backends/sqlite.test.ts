import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sqlite, SqliteStore } from './sqlite.js';
import { runStoreContract, sampleJob } from './store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'backjob-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

runStoreContract('sqlite', async () => {
  const store = new SqliteStore(join(dir, `contract-${++files}.db`));
  return { store, cleanup: () => store.close() };
});

describe('SqliteStore', () => {
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
