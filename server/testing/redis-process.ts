/**
 * One process of the multi-process Redis tests, run as a child with
 * `node --import tsx server/testing/redis-process.ts web|worker`: a web process (Express,
 * HTTP API and WebSocket, `worker: false`) or a worker (`createWorker`), both
 * with the same job definitions. Prints `{"ready":true,"port":…}` once serving.
 *
 * Environment: `REDIS_URL`, `BACKJOB_PREFIX`, and `CONCURRENCY` (a worker's, default the shim's).
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Redis } from 'ioredis';
import { createBackJob, type BackJobServer } from '../backjob.js';
import { createWorker } from '../worker.js';
import { redis } from '../backends/redis/backend.js';

const role = process.argv[2];
const url = process.env.REDIS_URL!;
const prefix = process.env.BACKJOB_PREFIX!;
// Short enough that a killed worker is noticed within seconds, long enough to
// ride out a Redis restart without losing the lock.
const backend = redis({ url, prefix, lockDuration: 5_000, stalledInterval: 1_000 });
const marks = new Redis(url, { maxRetriesPerRequest: null });
marks.on('error', () => {});

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
  });
}

function defineJobs(backjob: BackJobServer): void {
  const steps = async (job: Parameters<Parameters<BackJobServer['define']>[1]>[0], params: { steps: number; ms: number }) => {
    // Where the test sees that the handler's signal fired, and why.
    job.signal.addEventListener('abort', () => {
      void marks.set(`${prefix}:test:aborted:${job.id}`, String((job.signal.reason as Error)?.message ?? job.signal.reason));
    });
    for (let i = 1; i <= params.steps; i++) {
      await sleep(params.ms, job.signal);
      job.update({ progress: (i * 100) / params.steps, text: `step ${i}` });
      job.log(`line ${i}`);
    }
    return { pid: process.pid };
  };
  backjob.define('steps', steps, { launchable: true });
  backjob.define('steps-retry', steps, { launchable: true, retries: 1 });
  // A parent of two `steps` children, for the family tests.
  backjob.define('family', async (job, params: { ms: number }) => {
    const kids = [await job.spawn('steps', { steps: 4, ms: params.ms }), await job.spawn('steps', { steps: 4, ms: params.ms }, { weight: 3 })];
    return Promise.all(kids.map((kid) => kid.result()));
  });
}

if (role === 'worker') {
  const concurrency = process.env.CONCURRENCY ? Number(process.env.CONCURRENCY) : undefined;
  const worker = createWorker({ backend, jobs: defineJobs, ...(concurrency ? { concurrency } : {}) });
  await worker.ready;
  console.log(JSON.stringify({ ready: true, pid: process.pid }));
} else {
  const app = express();
  const server = createServer(app);
  const backjob = createBackJob({ backend, worker: false });
  defineJobs(backjob);
  await backjob.ready;
  app.use(backjob.router());
  backjob.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  console.log(JSON.stringify({ ready: true, pid: process.pid, port: (server.address() as AddressInfo).port }));
}
