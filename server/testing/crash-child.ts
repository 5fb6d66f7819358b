/**
 * The process the crash test kills: runs two jobs on an SQLite file and
 * prints, on stdout, one JSON line per event batch that `flush()` confirmed
 * durable. Run as `node --import tsx server/testing/crash-child.ts <file>`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sqlite } from '../backends/local/sqlite.js';
import { createBackJob } from '../backjob.js';
import type { JobContext } from '../types.js';

const file = process.argv[2];
if (!file) throw new Error('usage: crash-child.ts <sqlite file>');

const backjob = createBackJob({ backend: sqlite({ file }), key: 'crash-test-key-0123456789abcdef' });

async function steady(job: JobContext): Promise<never> {
  for (let i = 1; ; i++) {
    job.update({ progress: i % 100, text: `step ${i}` });
    job.log(`line ${i}`);
    await job.flush();
    process.stdout.write(`${JSON.stringify({ job: job.id, ack: i })}\n`);
    await sleep(2);
  }
}

backjob.define('steady', steady);
backjob.define('retryable', steady, { retries: 1 });
const a = await backjob.start({ name: 'steady' });
const b = await backjob.start({ name: 'retryable' });
process.stdout.write(`${JSON.stringify({ started: [a.id, b.id] })}\n`);
