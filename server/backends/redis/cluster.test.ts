/**
 * Two web processes and two workers on one real redis-server, as child
 * processes: one view of every job across them, cancel from anywhere, and the
 * faults of a distributed deployment (a worker SIGKILLed mid-job, Redis
 * crashing mid-job, a web process dying under its clients).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { readServerMessage, SUBPROTOCOL, type JobEvent, type ServerMessage } from '../../../shared/protocol.js';
import type { Backend } from '../../types.js';
import { redis } from './backend.js';
import { startTestRedis, type TestRedis } from '../../testing/redis-server.js';
import { waitFor } from '../../testing/helpers.js';

const CHILD = new URL('../../testing/redis-process.ts', import.meta.url).pathname;
const prefix = `cluster-${randomUUID()}`;

interface Child {
  proc: ChildProcess;
  pid: number;
  /** `http://127.0.0.1:<port>` of a web process. */
  url: string;
}

let redisServer: TestRedis;
let backend: Backend;
let marks: Redis;
const children: Child[] = [];
let webA: Child;
let webB: Child;

async function spawnChild(role: 'web' | 'worker'): Promise<Child> {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, role], {
    env: { ...process.env, REDIS_URL: redisServer.url, BACKJOB_PREFIX: prefix },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (chunk) => (stderr += chunk));
  const lines = createInterface({ input: proc.stdout! });
  const ready = await new Promise<{ pid: number; port?: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role} did not start within 30 s:\n${stderr}`)), 30_000);
    lines.on('line', (line) => {
      if (!line.startsWith('{"ready"')) return;
      clearTimeout(timer);
      resolve(JSON.parse(line));
    });
    proc.once('exit', (code) => reject(new Error(`${role} exited with ${code}:\n${stderr}`)));
  });
  const child = { proc, pid: ready.pid, url: `http://127.0.0.1:${ready.port}` };
  children.push(child);
  return child;
}

function kill(child: Child): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.proc.once('exit', () => resolve());
    child.proc.kill('SIGKILL');
  });
}

async function startJob(web: Child, name: string, params: unknown): Promise<{ id: string; token: string }> {
  const res = await fetch(`${web.url}/backjob/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, params }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  return (await res.json()) as { id: string; token: string };
}

/** A raw protocol client watching one job, as the browser connection does. */
class Watcher {
  readonly events: JobEvent[] = [];
  lastSeq = 0;
  readonly socket: WebSocket;
  closed = false;

  constructor(web: Child, id: string, token: string, after = 0) {
    this.lastSeq = after;
    this.socket = new WebSocket(`${web.url.replace('http', 'ws')}/backjob/ws`, SUBPROTOCOL);
    this.socket.on('open', () => this.socket.send(JSON.stringify({ type: 'subscribe', job: id, token, after })));
    this.socket.on('message', (raw) => {
      const message = readServerMessage(String(raw));
      if (message.type === 'events') {
        for (const event of message.events) {
          // After the snapshot, every event after `after` arrives once, in seq order
          // (progress may be coalesced away).
          assert.ok(event.seq > this.lastSeq, `seq ${event.seq} after ${this.lastSeq}`);
          this.events.push(event);
          this.lastSeq = event.seq;
        }
      }
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => (this.closed = true));
  }

  lines(): string[] {
    return this.events.flatMap((e) => (e.type === 'job:log' ? [e.line] : []));
  }

  end(): JobEvent | undefined {
    return this.events.find((e) => e.type === 'job:completed' || e.type === 'job:failed' || e.type === 'job:canceled');
  }

  close(): void {
    this.socket.terminate();
  }
}

async function storedLines(id: string): Promise<string[]> {
  const events = await backend.store.eventsAfter(id, 0, 100_000);
  assert.deepEqual(
    events.map((e) => e.seq),
    events.map((_, i) => i + 1),
    'the stored log has no gaps',
  );
  return events.flatMap((e) => (e.type === 'job:log' ? [e.line] : []));
}

const runnerPid = (runner: string | null | undefined) => Number(runner?.split(':')[1]);

describe('Redis: two web processes, two workers', { timeout: 240_000 }, () => {
  before(async () => {
    redisServer = await startTestRedis();
    backend = redis({ url: redisServer.url, prefix });
    marks = new Redis(redisServer.url, { maxRetriesPerRequest: null });
    marks.on('error', () => {});
    [webA, webB] = await Promise.all([spawnChild('web'), spawnChild('web'), spawnChild('worker'), spawnChild('worker')]);
  });

  after(async () => {
    await Promise.all(children.map(kill));
    await backend?.close();
    marks?.disconnect();
    await redisServer?.stop();
  });

  it('runs a job started on web A in a worker, watched live from web B; a cancel from A aborts the handler', async () => {
    const { id, token } = await startJob(webA, 'steps', { steps: 500, ms: 20 });
    const watcher = new Watcher(webB, id, token);
    try {
      await waitFor(() => watcher.lines().length >= 5, 'five live lines on web B');
      const job = (await backend.store.get(id))!;
      const workers = children.filter((c) => c !== webA && c !== webB).map((c) => c.pid);
      assert.ok(workers.includes(runnerPid(job.runner)), `runs in a worker (${job.runner})`);

      const res = await fetch(`${webA.url}/backjob/jobs/${id}/cancel`, { method: 'POST', headers: { 'x-backjob-token': token } });
      assert.equal(res.status, 200, await res.text());
      await waitFor(() => watcher.end(), 'the cancel on web B');
      assert.equal(watcher.end()!.type, 'job:canceled');
      const reason = await waitFor(() => marks.get(`${prefix}:test:aborted:${id}`), "the worker's handler to see its signal abort");
      assert.match(reason, /cancel/);
      const stored = await storedLines(id);
      assert.deepEqual(watcher.lines(), stored, 'web B showed the stored lines, in order');
    } finally {
      watcher.close();
    }
  });

  it('fails a job whose worker is SIGKILLed as "worker lost", and re-runs one that has retries on the other worker', async () => {
    const lost = await startJob(webA, 'steps', { steps: 2000, ms: 20 });
    const watcher = new Watcher(webB, lost.id, lost.token);
    try {
      await waitFor(() => watcher.lines().length >= 3, 'the job to run');
      const victimPid = runnerPid((await backend.store.get(lost.id))!.runner);
      const victim = children.find((c) => c.pid === victimPid)!;
      await kill(victim);
      const end = await waitFor(() => watcher.end(), 'watchers to hear of the lost worker', 60_000);
      assert.equal(end.type, 'job:failed');
      assert.equal(end.type === 'job:failed' && end.code, 'BACKJOB_ERR_WORKER_LOST');
      assert.equal(end.type === 'job:failed' && end.reason, 'worker lost');
    } finally {
      watcher.close();
    }

    await spawnChild('worker');
    const retried = await startJob(webB, 'steps-retry', { steps: 150, ms: 20 });
    const second = new Watcher(webA, retried.id, retried.token);
    try {
      await waitFor(() => second.lines().length >= 3, 'the retried job to run');
      const firstRunner = runnerPid((await backend.store.get(retried.id))!.runner);
      await kill(children.find((c) => c.pid === firstRunner)!);
      const end = await waitFor(() => second.end(), 'the re-run to complete', 60_000);
      assert.equal(end.type, 'job:completed');
      const starts = second.events.filter((e) => e.type === 'job:start');
      assert.deepEqual(
        starts.map((e) => e.type === 'job:start' && e.attempt),
        [1, 2],
      );
      const job = (await backend.store.get(retried.id))!;
      assert.notEqual((job.result as { pid: number }).pid, firstRunner, 'the other worker finished it');
      assert.equal(job.attempt, 2);
    } finally {
      second.close();
    }
    await spawnChild('worker');
  });

  it('rides out a Redis crash mid-job: the job completes and watchers miss no acknowledged event', async () => {
    const { id, token } = await startJob(webA, 'steps', { steps: 120, ms: 25 });
    const watcher = new Watcher(webB, id, token);
    try {
      await waitFor(() => watcher.lines().length >= 10, 'the job to run');
      await redisServer.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 500));
      await redisServer.start();
      const end = await waitFor(() => watcher.end(), 'the job to complete after the crash', 60_000);
      assert.equal(end.type, 'job:completed');
      const stored = await storedLines(id);
      assert.deepEqual(stored, Array.from({ length: 120 }, (_, i) => `line ${i + 1}`), 'every line stored once, in order');
      assert.deepEqual(watcher.lines(), stored, 'the watcher saw every line, in order');
    } finally {
      watcher.close();
    }
  });

  it('lets the clients of a killed web process resume on the other one from their last seq', async () => {
    const { id, token } = await startJob(webB, 'steps', { steps: 100, ms: 25 });
    const onA = new Watcher(webA, id, token);
    await waitFor(() => onA.lines().length >= 5, 'lines on web A');
    await kill(webA);
    await waitFor(() => onA.closed, 'the socket to drop');
    const onB = new Watcher(webB, id, token, onA.lastSeq);
    try {
      const end = await waitFor(() => onB.end(), 'the job to complete on web B');
      assert.equal(end.type, 'job:completed');
      assert.equal(onB.events[0]!.seq > onA.lastSeq, true);
      assert.deepEqual([...onA.lines(), ...onB.lines()], await storedLines(id), 'nothing lost, nothing twice');
    } finally {
      onB.close();
    }
  });
});
