import { writeHeapSnapshot } from 'node:v8';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqlite } from '../server/index.js';
import { openSockets, startBackJobServer, sleep } from './kit.js';
const live = await startBackJobServer({ backend: sqlite({ file: join(mkdtempSync(join(tmpdir(), 'h-')), 'b.db') }) });
const job = await live.manual();
job.job.log('0 0 x'); await job.job.flush();
const gc = (globalThis as any).gc;
const w = await openSockets({ url: live.wsUrl, protocol: 'backjob', sockets: 1, job: job.id, token: job.token, last: 1 });
for (let i=0;i<4;i++){gc(); await sleep(50);}
writeHeapSnapshot('/tmp/fan/h0.heapsnapshot');
const s = await openSockets({ url: live.wsUrl, protocol: 'backjob', sockets: 1000, job: job.id, token: job.token, last: 1 });
await sleep(300);
for (let i=0;i<4;i++){gc(); await sleep(50);}
writeHeapSnapshot('/tmp/fan/h1.heapsnapshot');
process.exit(0);
