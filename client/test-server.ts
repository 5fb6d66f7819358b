/**
 * The real server the element integration tests talk to: Express, the
 * BackJob HTTP API and WebSocket hub, a memory backend and a few test jobs.
 * Started by web-test-runner.config.mjs as a child process; prints
 * `listening on PORT`. Origins allowed on the WebSocket come from
 * `BACKJOB_TEST_ORIGINS` (comma-separated).
 *
 * Test hooks under `/test/`: `POST /test/drop-sockets` cuts every open
 * WebSocket mid-stream (the client must resume without losing or doubling a
 * line), `POST /test/release/:id` lets a `gated` job finish, `GET /test/info`
 * says where the WebSocket is.
 */
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import express from 'express';
import { createBackJob, memory } from '../server/index.js';
import type { JobContext } from '../server/types.js';

/** Waits `ms`, or less if `signal` aborts. */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

// The test pages' origins, for both doors: their HTTP calls come through the runner's proxy, their sockets directly.
const allowedOrigins = (process.env.BACKJOB_TEST_ORIGINS ?? '').split(',').filter(Boolean);
const backjob = createBackJob({ backend: memory(), merge: true, allowedOrigins });

/** Logs `lines` numbered lines with progress, `delayMs` apart, then completes. */
backjob.define(
  'count',
  async (job: JobContext, params: { lines?: number; delayMs?: number }) => {
    const lines = Math.min(Number(params?.lines ?? 10), 2000);
    const delayMs = Math.min(Number(params?.delayMs ?? 20), 1000);
    for (let i = 1; i <= lines && !job.signal.aborted; i++) {
      job.log(`line ${i}`);
      job.update({ progress: (i / lines) * 100, text: `Step ${i} of ${lines}` });
      await sleep(delayMs, job.signal);
    }
    return { lines };
  },
  { launchable: true },
);

const gates = new Map<string, () => void>();
/** Runs indeterminate until released through `/test/release/:id` or canceled. */
backjob.define(
  'gated',
  async (job: JobContext) => {
    job.update({ progress: null, text: 'Waiting for the test' });
    job.log('<img src=x onerror="window.__backjobXss = true">');
    await new Promise<void>((resolve) => {
      gates.set(job.id, resolve);
      job.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    gates.delete(job.id);
    return 'released';
  },
  { launchable: true },
);

/** Fails with the given reason after a log line. */
backjob.define(
  'explode',
  async (job: JobContext, params: { reason?: string }) => {
    job.log('about to fail');
    job.update(30);
    await sleep(50);
    throw new Error(params?.reason ?? 'It broke');
  },
  { launchable: true },
);

/** Declared, but not for browsers. */
backjob.define('internal', async () => 'never from a browser');

await backjob.ready;

const app = express();
app.use(backjob.router());
const upgraded = new Set<Socket>();
app.post('/test/drop-sockets', (_req, res) => {
  const dropped = upgraded.size;
  for (const socket of upgraded) socket.destroy();
  upgraded.clear();
  res.json({ dropped });
});
app.get('/test/info', (_req, res) => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  res.json({ endpoint: `ws://127.0.0.1:${port}/backjob/ws` });
});
app.post('/test/release/:id', (req, res) => {
  const release = gates.get(req.params.id);
  release?.();
  res.json({ released: Boolean(release) });
});

const server = createServer(app);
server.on('upgrade', (_req, socket: Socket) => {
  upgraded.add(socket);
  socket.once('close', () => upgraded.delete(socket));
});
backjob.attach(server, { heartbeat: 5_000 });

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (typeof address === 'object' && address) console.log(`listening on ${address.port}`);
});

const stop = () => {
  server.close();
  void backjob.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
