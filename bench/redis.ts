/**
 * BackJob on Redis against the peer an app would pick today: plain BullMQ with
 * QueueEvents forwarded over `ws` by hand (`bench/redis-peer.ts`). Same Redis,
 * same run, same work, same worker concurrency, everything in this process:
 *
 * - 1,000 jobs × 10 progress updates, one watcher of every job: throughput
 *   (updates/s until the watcher saw every job end) and p50/p99 latency from
 *   the update call to the watcher;
 * - one job flooding 10,000 progress updates: the same figures; BackJob's
 *   `update()` returns at once, so BackJob runs it twice: fire-and-forget, and
 *   paced (the handler awaits `job.flush()` every 100 updates, the
 *   backpressure a handler opts into; the peer awaits every update);
 * - BackJob only (the peer has no equivalent): one job flooding 10,000 log
 *   lines, every one delivered, in order, resumable.
 *
 * Throughput ratios are BackJob / peer (> 1: BackJob is faster). BackJob
 * delivers progress latest-wins, so a flood reaches the watcher coalesced;
 * its log lines never are. Redis runs with AOF, `appendfsync everysec`.
 * Standalone: `npx tsx bench/redis.ts`.
 */
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { readServerMessage, SUBPROTOCOL, type ServerMessage } from '../shared/protocol.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createBackJob, sqlite } from '../server/index.js';
import { redis } from '../server/redis.js';
import type { Backend } from '../server/types.js';
import { QUICK, median, round, startRedis } from './kit.js';
import { startPeer } from './redis-peer.js';

import type { Figure } from './kit.js';

const JOBS = Number(process.env.BENCH_JOBS ?? (QUICK ? 500 : 1_000));
const UPDATES_PER_JOB = 10;
const FLOOD = 10_000;
const CONCURRENCY = 50;
/** Jobs one hub socket may watch at once. */
const SUBSCRIPTIONS_PER_SOCKET = 1_000;
/**
 * Jobs each stack runs, unmeasured, before the figures: enough for both to
 * reach their steady state, as a long-running server does (after 100, each
 * was still getting faster from one run of 1,000 to the next, BackJob, with
 * more code to compile, more so).
 */
const WARM_UP = QUICK ? 200 : 1_000;
/** In the paced flood, the handler awaits `job.flush()` after this many updates. */
const PACE = 100;

interface Result {
  /** Updates per second, from the first start to the watcher seeing the last end. */
  throughput: number;
  /** Jobs per second, the same way. */
  jobsPerSecond: number;
  /** Medians over the jobs of where each job's time went, ms (BackJob only: from its events' times, seen by the watcher). */
  spans?: Spans;
  p50: number;
  p99: number;
  /** Progress updates the watcher received (BackJob may coalesce a flood). */
  delivered: number;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Where a job's time goes, as its watcher sees it: medians in ms. */
interface Spans {
  /** The `start()` call, to its reply. */
  start: number;
  /** Created → a worker picked it (`job:start`). */
  queued: number;
  /** Picked → its first progress event. */
  firstUpdate: number;
  /** First progress → its end event. */
  run: number;
  /** End event → the watcher parsed it. */
  delivered: number;
}

function summarize(jobs: number, updates: number, began: number, latencies: number[]): Result {
  const seconds = (Date.now() - began) / 1000;
  return {
    throughput: (jobs * updates) / seconds,
    jobsPerSecond: jobs / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    delivered: latencies.length,
  };
}

/**
 * BackJob on `backend` (a Redis URL: the Redis backend on it): `jobs` jobs
 * of `updates` progress updates each (negative: that many log lines), one
 * watcher of all; with `flushEvery`, the handler awaits `job.flush()` after
 * every that many updates.
 */
export async function benchBackJob(backend: string | Backend, jobs: number, updates: number, flushEvery = 0): Promise<Result> {
  const store = typeof backend === 'string' ? redis({ url: backend, prefix: `bench-${randomUUID()}` }) : backend;
  const backjob = createBackJob({ backend: store, concurrency: CONCURRENCY, merge: false });
  backjob.define('work', async (job, params: { updates: number; flushEvery: number }) => {
    for (let i = 1; i <= params.updates; i++) {
      job.update({ progress: (i * 100) / params.updates, text: String(Date.now()) });
      // Backpressure, when asked for: wait until what was reported so far is stored.
      if (params.flushEvery && i % params.flushEvery === 0) await job.flush();
      else await yieldToLoop();
    }
  });
  backjob.define('lines', async (job, params: { lines: number }) => {
    for (let i = 1; i <= params.lines; i++) {
      job.log(`${Date.now()}`);
      await yieldToLoop();
    }
  });
  const server = createServer();
  // One watcher subscribes to every job: lift the per-socket message budget meant for browsers.
  backjob.attach(server, { rateLimit: 1_000_000 });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  await backjob.ready;
  // The hub takes at most 1,000 subscriptions per socket: the watcher of 1,000
  // jobs holds one socket, as the peer's does (more jobs, more sockets).
  const wsUrl = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/backjob/ws`;
  const sockets = await Promise.all(
    Array.from({ length: Math.ceil(jobs / SUBSCRIPTIONS_PER_SOCKET) }, async () => {
      const socket = new WebSocket(wsUrl, SUBPROTOCOL);
      await once(socket, 'open');
      return socket;
    }),
  );
  try {
    const latencies: number[] = [];
    let ended = 0;
    let allEnded!: () => void;
    const done = new Promise<void>((resolve) => (allEnded = resolve));
    const times = new Map<string, { called: number; replied: number; created?: number; picked?: number; first?: number; end?: number; seen?: number }>();
    const onMessage = (raw: unknown) => {
      const message = readServerMessage(String(raw));
      if (message.type === 'snapshot') {
        const t = times.get(message.job);
        if (t) t.created = message.snapshot.createdAt;
      }
      if (message.type !== 'events') return;
      const now = Date.now();
      const t = times.get(message.job);
      for (const event of message.events) {
        if (event.type === 'job:start' && t) t.picked = event.at;
        if (event.type === 'job:progress' && event.text) {
          latencies.push(now - Number(event.text));
          if (t && t.first === undefined) t.first = event.at;
        } else if (event.type === 'job:log') latencies.push(now - Number(event.line));
        else if (event.type === 'job:completed' || event.type === 'job:failed') {
          if (t) [t.end, t.seen] = [event.at, now];
          if (++ended === jobs) allEnded();
        }
      }
    };
    for (const socket of sockets) socket.on('message', onMessage);
    const progress = setInterval(() => process.stderr.write(`  backjob: ${ended}/${jobs} ended, ${latencies.length} updates seen\n`), 5000);
    progress.unref();
    const began = Date.now();
    const spec = updates < 0 ? { name: 'lines', params: { lines: -updates } } : { name: 'work', params: { updates, flushEvery } };
    for (let i = 0; i < jobs; i++) {
      const called = Date.now();
      const { id, token } = await backjob.start(spec);
      times.set(id, { called, replied: Date.now() });
      sockets[Math.floor(i / SUBSCRIPTIONS_PER_SOCKET)]!.send(JSON.stringify({ type: 'subscribe', job: id, token }));
    }
    await done;
    clearInterval(progress);
    const all = [...times.values()];
    const med = (span: (t: (typeof all)[number]) => number | undefined) => median(all.map(span).filter((v): v is number => v !== undefined && !Number.isNaN(v)));
    return {
      ...summarize(jobs, Math.abs(updates), began, latencies),
      spans: {
        start: med((t) => t.replied - t.called),
        queued: med((t) => (t.picked ?? NaN) - (t.created ?? NaN)),
        firstUpdate: med((t) => (t.first ?? NaN) - (t.picked ?? NaN)),
        run: med((t) => (t.end ?? NaN) - (t.first ?? NaN)),
        delivered: med((t) => (t.seen ?? NaN) - (t.end ?? NaN)),
      },
    };
  } finally {
    for (const socket of sockets) socket.terminate();
    await backjob.close();
    server.close();
  }
}

/** The peer (`redis-peer.ts`): the same jobs and one watcher, over BullMQ + QueueEvents + ws. */
export async function benchPeer(url: string, jobs: number, updates: number, options: { workerProcess?: boolean } = {}): Promise<Result> {
  const peer = await startPeer(url, `peer-${randomUUID()}`, CONCURRENCY, options);
  const socket = new WebSocket(peer.url);
  await once(socket, 'open');
  try {
    const latencies: number[] = [];
    let ended = 0;
    let allEnded!: () => void;
    const done = new Promise<void>((resolve) => (allEnded = resolve));
    let subscribed!: () => void;
    const pong = new Promise<void>((resolve) => (subscribed = resolve));
    socket.on('message', (raw) => {
      const message = JSON.parse(String(raw)) as { type: string; data?: { text: string } };
      if (message.type === 'pong') subscribed();
      else if (message.type === 'progress') latencies.push(Date.now() - Number(message.data!.text));
      else if (++ended === jobs) allEnded();
    });
    // The glue has no replay: a watcher must subscribe before the job runs.
    const ids = Array.from({ length: jobs }, (_, i) => `job-${i}`);
    for (const id of ids) socket.send(JSON.stringify({ subscribe: id }));
    socket.send('{}');
    await pong;
    const began = Date.now();
    for (const id of ids) await peer.add(id, updates);
    await done;
    return summarize(jobs, updates, began, latencies);
  } finally {
    socket.terminate();
    await peer.close();
  }
}



/** Redis commands per job while `run` runs (`INFO commandstats`, scripts' inner commands included), busiest first. */
async function commandsPerJob(url: string, jobs: number, run: () => Promise<Result>): Promise<{ result: Result; total: number; top: Array<[string, number]> }> {
  const admin = new Redis(url);
  try {
    await admin.config('RESETSTAT');
    const result = await run();
    const info = await admin.info('commandstats');
    const counts = [...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map(([, name, calls]) => [name!, Number(calls) / jobs] as [string, number]);
    counts.sort((a, b) => b[1] - a[1]);
    return { result, total: counts.reduce((sum, [, n]) => sum + n, 0), top: counts.slice(0, 6) };
  } finally {
    admin.disconnect();
  }
}

/** Runs both stacks on one private redis-server, and BackJob on SQLite against the peer with a worker process. */
export async function benchRedis(): Promise<Figure[]> {
  const server = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'backjob-bench-redis-'));
  try {
    const figures: Figure[] = [];
    const add = (name: string, ours: Result, peer: Result) => {
      figures.push(
        { name: `${name}: BackJob throughput`, value: Math.round(ours.throughput), unit: 'updates/s' },
        { name: `${name}: peer throughput`, value: Math.round(peer.throughput), unit: 'updates/s' },
        { name: `${name}: throughput ratio BackJob/peer`, value: round(ours.throughput / peer.throughput), unit: '×' },
        { name: `${name}: BackJob latency p50 / p99`, value: ours.p50, unit: `/ ${ours.p99} ms` },
        { name: `${name}: peer latency p50 / p99`, value: peer.p50, unit: `/ ${peer.p99} ms` },
        { name: `${name}: updates the watcher received, BackJob / peer`, value: ours.delivered, unit: `/ ${peer.delivered}` },
      );
    };
    // Neither stack is measured cold: both load their code paths and JIT-compile first.
    await benchBackJob(server.url, WARM_UP, UPDATES_PER_JOB);
    await benchPeer(server.url, WARM_UP, UPDATES_PER_JOB);
    const many = `Redis, ${JOBS} jobs × ${UPDATES_PER_JOB}`;
    const ours = await commandsPerJob(server.url, JOBS, () => benchBackJob(server.url, JOBS, UPDATES_PER_JOB));
    const peer = await commandsPerJob(server.url, JOBS, () => benchPeer(server.url, JOBS, UPDATES_PER_JOB));
    add(many, ours.result, peer.result);
    const spans = ours.result.spans!;
    figures.push(
      { name: `${many}: BackJob job time, start() call (median)`, value: spans.start, unit: 'ms' },
      { name: `${many}: BackJob job time, created → picked by a worker`, value: spans.queued, unit: 'ms' },
      { name: `${many}: BackJob job time, picked → first update`, value: spans.firstUpdate, unit: 'ms' },
      { name: `${many}: BackJob job time, first update → end`, value: spans.run, unit: 'ms' },
      { name: `${many}: BackJob job time, end → watcher`, value: spans.delivered, unit: 'ms' },
      { name: `${many}: Redis commands per job, BackJob / peer`, value: round(ours.total, 1), unit: `/ ${round(peer.total, 1)}` },
      { name: `${many}: BackJob's busiest commands per job`, value: round(ours.top[0]?.[1] ?? 0, 1), unit: ours.top.map(([c, n]) => `${c} ${round(n, 1)}`).join(', ') },
      { name: `${many}: peer's busiest commands per job`, value: round(peer.top[0]?.[1] ?? 0, 1), unit: peer.top.map(([c, n]) => `${c} ${round(n, 1)}`).join(', ') },
    );
    const floodPeer = await benchPeer(server.url, 1, FLOOD);
    add(`Redis, 1 job × ${FLOOD}`, await benchBackJob(server.url, 1, FLOOD), floodPeer);
    add(`Redis, 1 job × ${FLOOD}, flush() every ${PACE}`, await benchBackJob(server.url, 1, FLOOD, PACE), floodPeer);
    const lines = await benchBackJob(server.url, 1, -FLOOD);
    figures.push(
      { name: `Redis, 1 job × ${FLOOD} log lines: BackJob throughput`, value: Math.round(lines.throughput), unit: 'lines/s' },
      { name: `Redis, 1 job × ${FLOOD} log lines: BackJob latency p50 / p99`, value: lines.p50, unit: `/ ${lines.p99} ms` },
      { name: `Redis, 1 job × ${FLOOD} log lines: lines the watcher received`, value: lines.delivered, unit: 'lines' },
    );
    // Embedded: BackJob in the app's process on SQLite, against the BullMQ glue with its worker in a process of its own.
    await benchPeer(server.url, WARM_UP, UPDATES_PER_JOB, { workerProcess: true });
    await benchBackJob(sqlite({ file: join(dir, 'warm.db') }), WARM_UP, UPDATES_PER_JOB);
    const embedded = await benchBackJob(sqlite({ file: join(dir, 'jobs.db') }), JOBS, UPDATES_PER_JOB);
    const glue = await benchPeer(server.url, JOBS, UPDATES_PER_JOB, { workerProcess: true });
    figures.push(
      { name: `embedded, ${JOBS} jobs × ${UPDATES_PER_JOB}: BackJob on SQLite`, value: Math.round(embedded.jobsPerSecond), unit: 'jobs/s' },
      { name: `embedded: BullMQ glue with a worker process`, value: Math.round(glue.jobsPerSecond), unit: 'jobs/s' },
      { name: `embedded: ratio BackJob/glue (target ≥ 5)`, value: round(embedded.jobsPerSecond / glue.jobsPerSecond), unit: '×' },
    );
    return figures;
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const figure of await benchRedis()) console.log(`${figure.name}: ${figure.value.toLocaleString('en-US')} ${figure.unit}`);
}
