import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, it } from 'node:test';
import { sqlite } from '../backends/local/sqlite.js';
import { createBackJob } from '../backjob.js';
import { tempDir, waitFor } from '../testing/helpers.js';

const temp = tempDir('backjob-crash-');
after(() => temp.remove());

it('after kill -9 and a restart, running jobs are failed "interrupted" or re-run, and every acknowledged event is kept', { timeout: 60_000 }, async () => {
  const file = join(temp.dir, 'jobs.db');
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../testing/crash-child.ts'), file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  let ids: string[] = [];
  const acked = new Map<string, number>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    const message = JSON.parse(line) as { started?: string[]; job?: string; ack?: number };
    if (message.started) ids = message.started;
    if (message.job) acked.set(message.job, message.ack!);
  });
  // Both jobs well under way, mid-flood.
  await waitFor(() => ids.length === 2 && ids.every((id) => (acked.get(id) ?? 0) >= 30), 'the child to report progress', 30_000);
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  const [steadyId, retryableId] = ids as [string, string];
  const lastAck = new Map(acked);

  const backjob = createBackJob({ backend: sqlite({ file }), key: 'crash-test-key-0123456789abcdef' });
  try {
    backjob.define('steady', () => 'must not run again');
    backjob.define('retryable', () => 'rerun', { retries: 1 });
    await backjob.ready;

    const steady = await backjob.status(steadyId);
    assert.equal(steady?.status, 'failed');
    assert.equal(steady?.error, 'interrupted');
    assert.equal(steady?.errorCode, 'BACKJOB_ERR_INTERRUPTED');

    const retried = await waitFor(async () => {
      const job = await backjob.status(retryableId);
      return job?.status === 'completed' ? job : null;
    });
    assert.equal(retried.result, 'rerun');
    assert.equal(retried.attempt, 2);
    assert.equal(retried.retriesLeft, 0);

    for (const id of ids) {
      const events = await backjob.host.backend.store.eventsAfter(id, 0, 1_000_000);
      assert.deepEqual(
        events.map((e) => e.seq),
        events.map((_, i) => i + 1),
        'gap-free',
      );
      const lines = events.flatMap((e) => (e.type === 'job:log' ? [e.line] : []));
      const acks = lastAck.get(id)!;
      assert.ok(lines.length >= acks, `${lines.length} lines stored, ${acks} acknowledged`);
      assert.deepEqual(
        lines.slice(0, acks),
        Array.from({ length: acks }, (_, i) => `line ${i + 1}`),
      );
    }
    const retryEvents = await backjob.host.backend.store.eventsAfter(retryableId, 0, 1_000_000);
    assert.deepEqual(
      retryEvents.filter((e) => e.type === 'job:start').map((e) => (e as { attempt: number }).attempt),
      [1, 2],
    );
  } finally {
    await backjob.close();
  }
});
