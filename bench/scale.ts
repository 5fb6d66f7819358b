/**
 * How cost grows, on SQLite: time and memory against the number of stored
 * jobs (start, status, the first page of a list, a page deep behind a cursor,
 * the retention sweep) and against the size of one job's log (a watcher
 * subscribing from the start, one resuming from the middle, and how much the
 * server's memory grows while it replays). Flat columns mean nothing scans a
 * whole table or stream.
 *
 * Runs in a process of its own with `--expose-gc` (`benchScale` spawns it),
 * so memory is measured after GC and nothing else's garbage counts.
 * Standalone: `node --expose-gc --import tsx bench/scale.ts` (prints JSON).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createBackJob, sqlite } from '../server/index.js';
import type { BackJob, BackJobOptions } from '../server/types.js';
import { KEY, QUICK, clock, openSockets, round, sleep, startBackJobServer, waitFor } from './kit.js';
import type { Figure } from './kit.js';

const gc = (globalThis as { gc?: () => void }).gc;

async function heap(): Promise<{ heap: number; rss: number }> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await sleep(20);
  }
  const { heapUsed, rss } = process.memoryUsage();
  return { heap: heapUsed, rss };
}

const note = (what: string) => process.stderr.write(`  scale: ${what}\n`);

const mb = (bytes: number) => round(bytes / 1024 / 1024, 1);

/** Mean ms of `times` sequential calls of `call(i)`. */
async function mean(times: number, call: (i: number) => Promise<unknown>): Promise<number> {
  const began = clock();
  for (let i = 0; i < times; i++) await call(i);
  return (clock() - began) / times;
}

async function open(file: string, options: Partial<BackJobOptions> = {}): Promise<BackJob> {
  const backjob = createBackJob({ backend: sqlite({ file }), key: KEY, merge: false, concurrency: 32, ...options });
  backjob.define('noop', async () => 'ok');
  await backjob.ready;
  return backjob;
}

/** `count` completed jobs in a fresh database; then each operation timed against them. */
async function storedJobs(dir: string, count: number): Promise<Figure[]> {
  const file = join(dir, `jobs-${count}.db`);
  let backjob = await open(file);
  const ids: string[] = [];
  let completed = 0;
  backjob.on('job:completed', () => completed++);
  for (let i = 0; i < count; i++) {
    ids.push((await backjob.start({ name: 'noop', params: i })).id);
    // Keep the queue short, as a real app's is: seeding measures nothing.
    if (i - completed > 500) await waitFor(() => i - completed < 100, 'the queue to drain');
  }
  await waitFor(() => completed === count, 'every seeded job to complete', 600_000);
  const label = `${count.toLocaleString('en-US')} stored jobs`;
  note(`${label} seeded`);
  const start = await mean(200, (i) => backjob.start({ name: 'noop', params: -i - 1 }));
  await waitFor(() => completed === count + 200, 'the timed jobs to complete');
  const status = await mean(1000, (i) => backjob.status(ids[(i * 7919) % count]!));
  const firstPage = await mean(100, () => backjob.list({ limit: 20 }));
  const middle = (await backjob.status(ids[Math.floor(count / 2)]!))!;
  const cursor = { createdAt: middle.createdAt, id: middle.id };
  const deep = await mean(100, () => backjob.list({ limit: 20, before: cursor }));
  if ((await backjob.list({ limit: 20, before: cursor })).length !== 20) throw new Error('the deep page is short');
  const memory = await heap();
  note(`${label} timed`);
  await backjob.close();
  // The sweep runs when BackJob opens: time opening with nothing to delete, then with everything past retention.
  let began = clock();
  backjob = await open(file, { backlogDays: 0, allBacklogDays: 0 });
  const plainOpen = clock() - began;
  await backjob.close();
  began = clock();
  backjob = await open(file, { backlogDays: 1e-9 });
  const sweep = clock() - began - plainOpen;
  const left = (await backjob.list({ limit: 1 })).length;
  await backjob.close();
  if (left) throw new Error('the sweep left jobs behind');
  return [
    { name: `${label}: start()`, value: round(start, 3), unit: 'ms' },
    { name: `${label}: status()`, value: round(status, 3), unit: 'ms' },
    { name: `${label}: list first page (20)`, value: round(firstPage, 3), unit: 'ms' },
    { name: `${label}: list a page behind a cursor halfway down`, value: round(deep, 3), unit: 'ms' },
    { name: `${label}: opening BackJob on them (recovery, nothing to sweep)`, value: round(plainOpen, 1), unit: 'ms' },
    { name: `${label}: retention sweep deleting all of them`, value: round(sweep, 1), unit: 'ms' },
    { name: `${label}: server heap after GC`, value: mb(memory.heap), unit: 'MiB' },
  ];
}

/**
 * A watcher in the socket child subscribes after `after`: ms from asking to its
 * first line and to the last (the child's clock is this machine's, as here).
 */
async function replay(url: string, job: string, token: string, after: number, lines: number): Promise<{ first: number; all: number }> {
  const watcher = await openSockets({ url, protocol: 'backjob', sockets: 1, job, token, after, last: lines - 1, countsOnly: true });
  try {
    const expected = lines - Math.max(0, after - 2);
    const report = await watcher.report();
    if (report.received !== expected) throw new Error(`the watcher got ${report.received} of ${expected} lines`);
    return { first: report.firstArrival - report.asked, all: report.lastArrival - report.asked };
  } finally {
    await watcher.close();
  }
}

/** One ended job of `lines` log lines; a watcher from the start and one from the middle; the server's memory while they replay. */
async function logSize(dir: string, lines: number): Promise<Figure[]> {
  const live = await startBackJobServer({ backend: sqlite({ file: join(dir, `log-${lines}.db`) }), maxLogLines: lines + 10 });
  try {
    const job = await live.manual();
    for (let i = 0; i < lines; i++) {
      job.job.log(`${i} 0 a line of a long job's log, about as long as a real one`);
      if (i % 10_000 === 9_999) await job.job.flush();
    }
    await job.job.flush();
    job.finish();
    await waitFor(async () => (await live.backjob.status(job.id))?.status === 'completed', 'the job to end');
    note(`${lines} lines seeded`);
    const base = await heap();
    let peak = base.rss;
    let peakHeap = base.heap;
    // Live memory, not garbage waiting for a collection: collect, then look, every 100 ms.
    const sampler = setInterval(() => {
      gc?.();
      const { rss, heapUsed } = process.memoryUsage();
      peak = Math.max(peak, rss);
      peakHeap = Math.max(peakHeap, heapUsed);
    }, 100);
    const whole = await replay(live.wsUrl, job.id, job.token, 0, lines);
    // Seqs: 1 is job:created, 2 job:start, then the lines.
    const half = await replay(live.wsUrl, job.id, job.token, 2 + lines / 2, lines);
    clearInterval(sampler);
    const label = `${lines.toLocaleString('en-US')}-line log`;
    return [
      { name: `${label}: subscribe from the start, first event`, value: round(whole.first, 1), unit: 'ms' },
      { name: `${label}: subscribe from the start, every line`, value: round(whole.all), unit: 'ms' },
      { name: `${label}: resume from the middle, first event`, value: round(half.first, 1), unit: 'ms' },
      { name: `${label}: resume from the middle, the rest`, value: round(half.all), unit: 'ms' },
      { name: `${label}: server peak RSS growth while replaying`, value: mb(peak - base.rss), unit: 'MiB' },
      { name: `${label}: server live heap growth while replaying (after GC, max)`, value: mb(peakHeap - base.heap), unit: 'MiB' },
    ];
  } finally {
    await live.close();
  }
}

async function run(): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'backjob-bench-scale-'));
  try {
    const figures: Figure[] = [];
    for (const count of QUICK ? [1_000, 10_000] : [1_000, 10_000, 100_000]) figures.push(...(await storedJobs(dir, count)));
    for (const lines of QUICK ? [10_000, 100_000] : [10_000, 100_000, 1_000_000]) figures.push(...(await logSize(dir, lines)));
    return figures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The suite: runs this file in a child with `--expose-gc` and reads its figures. */
export async function benchScale(): Promise<Figure[]> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk));
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`bench/scale.ts exited with ${code}`);
  return JSON.parse(out) as Figure[];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(JSON.stringify(await run()));
  process.exit(0);
}
