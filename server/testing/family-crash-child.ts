/**
 * The process the family crash test kills: runs two families on an SQLite
 * file, a parent that may re-run (`retries: 1`) and one that may not, each
 * with two children that flood events, and prints their ids as one JSON line
 * once every child runs. Run as `node --import tsx server/testing/family-crash-child.ts <file>`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sqlite } from '../backends/local/sqlite.js';
import { createBackJob } from '../backjob.js';
import type { JobContext } from '../types.js';

const file = process.argv[2];
if (!file) throw new Error('usage: family-crash-child.ts <sqlite file>');

const backjob = createBackJob({ backend: sqlite({ file }), key: 'crash-test-key-0123456789abcdef', concurrency: 8 });

async function kid(job: JobContext): Promise<never> {
  for (let i = 1; ; i++) {
    job.update(i % 100);
    await job.flush();
    await sleep(2);
  }
}

const families = new Map<string, string[]>();
async function parent(job: JobContext): Promise<unknown> {
  const a = await job.spawn('kid', { n: 0 });
  const b = await job.spawn('kid', { n: 1 });
  families.set(job.id, [a.id, b.id]);
  return [await a.result(), await b.result()];
}

backjob.define('kid', kid, { retries: 1 });
backjob.define('parent', parent, { retries: 1 });
backjob.define('doomed', parent);
const rerun = await backjob.start({ name: 'parent' });
const doomed = await backjob.start({ name: 'doomed' });
for (;;) {
  const kids = [...families.values()].flat();
  const statuses = await Promise.all(kids.map((id) => backjob.status(id)));
  if (kids.length === 4 && statuses.every((job) => job?.status === 'running' && (job.progress ?? 0) > 5)) break;
  await sleep(10);
}
process.stdout.write(`${JSON.stringify({ rerun: rerun.id, doomed: doomed.id, families: Object.fromEntries(families) })}\n`);
