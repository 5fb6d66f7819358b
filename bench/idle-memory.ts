/**
 * Memory per idle subscribed socket, in a process of its own run with
 * `--expose-gc`: a server (`backjob`: BackJob on SQLite with one running job;
 * `glue`: the plain ws server) reports its heap and RSS after GC, the parent
 * opens N idle sockets (the BackJob ones subscribed to the job), and the
 * server reports again. Protocol over IPC: the child sends `{type:'listening',
 * url, job, token}`; each `{type:'measure'}` is answered `{type:'memory', …}`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqlite } from '../server/index.js';
import { startGlue } from './glue.js';
import { sleep, startBackJobServer } from './kit.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

async function settled(): Promise<{ heap: number; rss: number }> {
  for (let i = 0; i < 4; i++) {
    gc!();
    await sleep(50);
  }
  const { heapUsed, external, rss } = process.memoryUsage();
  return { heap: heapUsed + external, rss };
}

const dir = mkdtempSync(join(tmpdir(), 'backjob-bench-mem-'));
let close: () => Promise<void>;
if (process.argv[2] === 'glue') {
  const glue = await startGlue();
  close = glue.close;
  process.send!({ type: 'listening', url: glue.url });
} else {
  const live = await startBackJobServer({ backend: sqlite({ file: join(dir, 'mem.db') }) });
  const job = await live.manual();
  job.job.log('0 0 one line, so a subscription has something to replay');
  await job.job.flush();
  close = live.close;
  process.send!({ type: 'listening', url: live.wsUrl, job: job.id, token: job.token });
}
process.on('message', async (m: { type: string }) => {
  if (m.type === 'measure') process.send!({ type: 'memory', ...(await settled()) });
  else if (m.type === 'exit') {
    await close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  }
});
