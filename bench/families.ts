/**
 * A batch followed by one watcher: `start([...])` of 1,000 members × 10
 * progress updates each, one WebSocket subscribed to the batch alone (its
 * snapshot and `job:child` events carry the members' progress), against the
 * baseline of ONE job making the same 10,000 updates, watched the same way,
 * in the same run, on the same backend (SQLite, then Redis with the web
 * process running the jobs). Both end when the watcher, folding what it
 * receives with the shared `applyEvent`, sees the job end with progress 100.
 *
 * Figures per backend: updates/s (start() call → the watcher saw the end),
 * the time from the last `update()` call to the watcher seeing it, what the
 * watcher received (frames, events, bytes; `job:child` events against the
 * 10,000 member updates) and the ratio batch / baseline (> 1: the batch is
 * faster). Concurrency 50, as in bench/redis.ts.
 * Standalone: `npx tsx bench/families.ts`.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { applyEvent, isEnded, readServerMessage, SUBPROTOCOL, type JobSnapshot, type ServerMessage } from '../shared/protocol.js';
import { createBackJob, sqlite } from '../server/index.js';
import { redis } from '../server/redis.js';
import type { Backend } from '../server/types.js';
import { clock, KEY, QUICK, round, startRedis, type Figure } from './kit.js';

const MEMBERS = Number(process.env.BENCH_MEMBERS ?? (QUICK ? 200 : 1_000));
const UPDATES_PER_MEMBER = 10;
const CONCURRENCY = 50;
/** The watcher has this long to see the end; longer is a hang (a batch that never ends), not a slow run. */
const END_TIMEOUT_MS = 180_000;

/** What one run measured. */
interface Run {
  /** Member updates (or the single job's updates) per second, start() call → the watcher saw the end. */
  throughput: number;
  /** start() call → the watcher saw the end, ms. */
  total: number;
  /** The last `update()` call of any member → the watcher saw the end, ms. */
  lag: number;
  frames: number;
  events: number;
  bytes: number;
  /** `job:child` events the watcher received (batch) … */
  childEvents: number;
  /** … and `job:progress` events (the single job). */
  progressEvents: number;
  /** Times the progress the watcher folded went down (it never should: members only move forward). */
  backwards: number;
}

/** `shape`: the batch of `MEMBERS` members, or one job making all their updates. */
async function run(backend: Backend, shape: 'batch' | 'single', members: number): Promise<Run> {
  const backjob = createBackJob({ key: KEY, backend, concurrency: CONCURRENCY, merge: false });
  // An error the shim survived (say, a write after close) is a finding: show it with where it came from.
  backjob.on('error', (error) => process.stderr.write(`  families (${shape}, ${members}): BackJob reported ${error.stack ?? error}\n`));
  let lastUpdate = 0;
  backjob.define('member', async (job, params: { updates: number }) => {
    for (let i = 1; i <= params.updates; i++) {
      job.update((i * 100) / params.updates);
      lastUpdate = clock();
      await yieldToLoop();
    }
  });
  const server = createServer((_req, res) => res.writeHead(404).end());
  backjob.attach(server, { rateLimit: 1_000_000 });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  await backjob.ready;
  const socket = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/backjob/ws`, SUBPROTOCOL);
  await once(socket, 'open');
  try {
    let snapshot: JobSnapshot | null = null;
    const seen = { frames: 0, events: 0, bytes: 0, childEvents: 0, progressEvents: 0, backwards: 0 };
    let ended!: (at: number) => void;
    let broke!: (error: Error) => void;
    const end = new Promise<number>((resolve, reject) => ([ended, broke] = [resolve, reject]));
    socket.on('message', (raw: Buffer) => {
      seen.frames += 1;
      seen.bytes += raw.length;
      const message = readServerMessage(String(raw));
      if (message.type === 'error') broke(new Error(`${message.code}: ${message.message}`));
      if (message.type === 'snapshot') snapshot = message.snapshot;
      if (message.type !== 'events' || !snapshot) return;
      for (const event of message.events) {
        seen.events += 1;
        if (event.type === 'job:child') seen.childEvents += 1;
        if (event.type === 'job:progress') seen.progressEvents += 1;
        const before: JobSnapshot = snapshot;
        snapshot = applyEvent(snapshot, event);
        if ((snapshot.progress ?? 0) < (before.progress ?? 0)) seen.backwards += 1;
        if (!isEnded(snapshot.status)) continue;
        const at = clock();
        // The end folds progress to 100 whatever came before: check what the members' news said just before it.
        const children = before.children ?? [];
        if (snapshot.status !== 'completed') broke(new Error(`the job ended ${snapshot.status}: ${snapshot.error}`));
        else if (shape === 'batch' && before.progress !== 100) {
          const done = children.filter((child) => child.status === 'completed').length;
          broke(new Error(`the batch ended with progress ${before.progress}, ${done}/${children.length} members completed as it showed them`));
        } else ended(at);
        return;
      }
    });
    const specs = Array.from({ length: members }, () => ({ name: 'member', params: { updates: UPDATES_PER_MEMBER } }));
    const began = clock();
    const { id, token } = shape === 'batch' ? await backjob.start(specs, { title: `${members} members` }) : await backjob.start({ name: 'member', params: { updates: members * UPDATES_PER_MEMBER } });
    socket.send(JSON.stringify({ type: 'subscribe', job: id, token }));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(async () => {
        const stored = await backjob.status(id).catch(() => null);
        const shown: JobSnapshot | null = snapshot;
        reject(
          new Error(
            `no end within ${END_TIMEOUT_MS / 1000} s: the watcher shows ${shown?.status} at ${shown?.progress}%, ` +
              `${shown?.children?.filter((child) => isEnded(child.status)).length ?? 0}/${shown?.children?.length ?? 0} members ended; stored: ${stored?.status} at ${stored?.progress}%`,
          ),
        );
      }, END_TIMEOUT_MS);
    });
    const seenAt = await Promise.race([end, late]).finally(() => clearTimeout(timer));
    const updates = members * UPDATES_PER_MEMBER;
    return { throughput: updates / ((seenAt - began) / 1000), total: seenAt - began, lag: seenAt - lastUpdate, ...seen };
  } finally {
    socket.terminate();
    server.closeAllConnections();
    await backjob.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function figures(label: string, batch: Run, single: Run): Figure[] {
  const updates = MEMBERS * UPDATES_PER_MEMBER;
  const name = `${label}, batch ${MEMBERS.toLocaleString('en-US')} × ${UPDATES_PER_MEMBER}`;
  const base = `${label}, 1 job × ${updates.toLocaleString('en-US')}`;
  const kib = (bytes: number) => round(bytes / 1024, 1);
  return [
    { name: `${name}: throughput`, value: Math.round(batch.throughput), unit: 'updates/s' },
    { name: `${base}: throughput`, value: Math.round(single.throughput), unit: 'updates/s' },
    { name: `${label}: throughput ratio batch/baseline`, value: round(batch.throughput / single.throughput), unit: '×' },
    { name: `${name}: start() → watcher saw the end / last update() → watcher`, value: Math.round(batch.total), unit: `/ ${round(batch.lag, 1)} ms` },
    { name: `${base}: start() → watcher saw the end / last update() → watcher`, value: Math.round(single.total), unit: `/ ${round(single.lag, 1)} ms` },
    { name: `${name}: job:child events the watcher received / member updates`, value: batch.childEvents, unit: `/ ${updates}` },
    { name: `${base}: job:progress events the watcher received / updates`, value: single.progressEvents, unit: `/ ${updates}` },
    { name: `${name}: watcher received frames / events / KiB`, value: batch.frames, unit: `/ ${batch.events} / ${kib(batch.bytes)}` },
    { name: `${base}: watcher received frames / events / KiB`, value: single.frames, unit: `/ ${single.events} / ${kib(single.bytes)}` },
    { name: `${label}: times the watcher's progress went down, batch / baseline`, value: batch.backwards, unit: `/ ${single.backwards}` },
    { name: `${label}: bytes to the watcher, batch/baseline`, value: round(batch.bytes / single.bytes), unit: '×' },
  ];
}

/** Batch, then baseline, on `open()`'s fresh backends; each warmed on a tenth of the work first, unmeasured. */
async function both(open: () => Backend): Promise<[Run, Run]> {
  const warm = Math.max(10, Math.round(MEMBERS / 10));
  await run(open(), 'batch', warm);
  await run(open(), 'single', warm);
  return [await run(open(), 'batch', MEMBERS), await run(open(), 'single', MEMBERS)];
}

export async function benchFamilies(): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'backjob-bench-families-'));
  const server = await startRedis();
  try {
    const onSqlite = await both(() => sqlite({ file: join(dir, `${randomUUID()}.db`) }));
    const onRedis = await both(() => redis({ url: server.url, prefix: `bench-${randomUUID()}` }));
    return [...figures('SQLite', ...onSqlite), ...figures('Redis', ...onRedis)];
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const figure of await benchFamilies()) console.log(`${figure.name}: ${figure.value.toLocaleString('en-US')} ${figure.unit}`);
}
