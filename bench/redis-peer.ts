/**
 * The peer BackJob on Redis is measured against: plain BullMQ, with its
 * QueueEvents forwarded to browsers over `ws` by hand — the glue an app writes
 * today to show live progress of BullMQ jobs. Kept as plain as such glue is:
 * a subscribe message per job, one frame per BullMQ event, no resume and no
 * log lines (QueueEvents carries neither).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { WebSocketServer, type WebSocket } from 'ws';

/** A running peer stack: queue, worker, QueueEvents and a ws endpoint. */
export interface PeerStack {
  /**
   * `ws://127.0.0.1:<port>`; send `{"subscribe":"<jobId>"}`, receive
   * `{type, jobId, data}`; `{}` is answered `{"type":"pong"}` once the
   * subscribes sent before it hold.
   */
  url: string;
  /** Adds a job whose handler reports `updates` progress values, each stamped with `Date.now()`. */
  add(jobId: string, updates: number): Promise<void>;
  close(): Promise<void>;
}

/** The peer's job: `updates` progress values, each stamped with `Date.now()`, one awaited call each. */
export async function peerHandler(job: Job): Promise<string> {
  const updates = job.data.updates as number;
  for (let i = 1; i <= updates; i++) {
    await job.updateProgress({ progress: (i * 100) / updates, text: String(Date.now()) });
  }
  return 'done';
}

const workerScript = join(fileURLToPath(new URL('.', import.meta.url)), 'peer-worker.ts');

/**
 * Starts the peer stack on `redisUrl` with `concurrency` jobs at once; with
 * `workerProcess`, its BullMQ worker runs in a child process (bench/peer-worker.ts), as an app's would.
 */
export async function startPeer(redisUrl: string, prefix: string, concurrency: number, options: { workerProcess?: boolean } = {}): Promise<PeerStack> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('peer', { connection, prefix });
  let worker: { close(): Promise<void> };
  if (options.workerProcess) {
    const child = spawn(process.execPath, ['--import', 'tsx', workerScript, redisUrl, prefix, String(concurrency)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await once(child, 'message');
    worker = {
      async close() {
        const gone = once(child, 'exit');
        child.kill('SIGTERM');
        await gone;
      },
    };
  } else {
    worker = new Worker('peer', peerHandler, { connection, prefix, concurrency });
  }
  const events = new QueueEvents('peer', { connection: { url: redisUrl }, prefix });
  await events.waitUntilReady();

  const watchers = new Map<string, Set<WebSocket>>();
  const server: Server = createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket) => {
    socket.on('message', (raw) => {
      const { subscribe } = JSON.parse(String(raw)) as { subscribe?: string };
      // A message without a job id is a barrier: every subscribe before it holds.
      if (subscribe === undefined) return socket.send('{"type":"pong"}');
      let set = watchers.get(subscribe);
      if (!set) watchers.set(subscribe, (set = new Set()));
      set.add(socket);
    });
    socket.on('close', () => {
      for (const set of watchers.values()) set.delete(socket);
    });
  });
  const forward = (type: string, jobId: string, data: unknown) => {
    const sockets = watchers.get(jobId);
    if (!sockets) return;
    const frame = JSON.stringify({ type, jobId, data });
    for (const socket of sockets) socket.send(frame);
    if (type !== 'progress') watchers.delete(jobId);
  };
  events.on('progress', ({ jobId, data }) => forward('progress', jobId, data));
  events.on('completed', ({ jobId, returnvalue }) => forward('completed', jobId, returnvalue));
  events.on('failed', ({ jobId, failedReason }) => forward('failed', jobId, failedReason));

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    async add(jobId, updates) {
      await queue.add('work', { updates }, { jobId, removeOnComplete: true, removeOnFail: true });
    },
    async close() {
      for (const socket of wss.clients) socket.terminate();
      await new Promise((resolve) => wss.close(resolve));
      await new Promise((resolve) => server.close(resolve));
      await worker.close();
      await events.close();
      await queue.close();
      await connection.quit();
    },
  };
}
