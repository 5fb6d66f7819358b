/**
 * Fairness under a flood, on each backend: with one job running at a time,
 * an anonymous client floods `POST /backjob/jobs` with 200 jobs (params varied
 * so none merge), then a signed-in user starts one. Measured: how many of the
 * flood's jobs started between the user's start and the user's job starting,
 * and how long the user's job waited. A strict first-in-first-out queue makes
 * the user wait for the whole flood; a fair one for about one job.
 *
 * The flood is over any per-owner quota, so the quota is lifted for the run
 * (`maxWaitingPerOwner: 0`): this measures the queue, not the quota. (The
 * figures "before" in docs/benchmarks.md come from this script on the commit
 * before fair queueing, where that option did not exist yet.)
 * Standalone: `npx tsx bench/fairness.ts`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createBackJob, memory, sqlite } from '../server/index.js';
import { redis } from '../server/redis.js';
import type { Backend } from '../server/types.js';
import { KEY, startRedis } from './kit.js';
import type { Figure } from './kit.js';

const FLOOD = 200;
/** Each job's work: long enough that the flood is a queue, short enough that a FIFO run ends. */
const JOB_MS = 10;

interface Outcome {
  /** Flood jobs that started after the user's start was answered and before the user's job started. */
  overtaking: number;
  /** Flood jobs that started before the user's job, in all. */
  before: number;
  /** The user's job: created → started, ms. */
  waitMs: number;
}

/** An Express app with BackJob's router, as an app mounts it; the `user` cookie is who is signed in. */
async function startApp(backend: Backend) {
  const backjob = createBackJob({
    backend,
    key: KEY,
    identify: (req) => /(?:^|;\s*)user=([^;]+)/.exec(req.headers.cookie ?? '')?.[1] ?? null,
    concurrency: 1,
    merge: false,
    maxWaitingPerOwner: 0,
  });
  backjob.define('work', () => new Promise((resolve) => setTimeout(resolve, JOB_MS)), { launchable: true });
  await backjob.ready;
  const app = express();
  app.use(backjob.router());
  const server = createServer(app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    backjob,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      await backjob.close();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

async function measure(backend: Backend): Promise<Outcome> {
  const app = await startApp(backend);
  try {
    const post = async (params: unknown, cookie?: string): Promise<string> => {
      const res = await fetch(`${app.url}/backjob/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
        body: JSON.stringify({ name: 'work', params }),
      });
      if (res.status !== 202) throw new Error(`start answered ${res.status}: ${await res.text()}`);
      return ((await res.json()) as { id: string }).id;
    };
    const flood: string[] = [];
    for (let i = 0; i < FLOOD; i += 20) {
      flood.push(...(await Promise.all(Array.from({ length: 20 }, (_, j) => post({ i: i + j })))));
    }
    const askedAt = Date.now();
    const mine = await post({ mine: true }, 'user=bob');
    let job;
    for (;;) {
      job = await app.backjob.status(mine);
      if (job?.startedAt !== undefined) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const started = await Promise.all(flood.map(async (id) => (await app.backjob.status(id))?.startedAt));
    const before = started.filter((at) => at !== undefined && at <= job.startedAt!);
    return {
      overtaking: before.filter((at) => at! >= askedAt).length,
      before: before.length,
      waitMs: job.startedAt! - job.createdAt,
    };
  } finally {
    await app.close();
  }
}

/** The figures, per backend. */
export async function benchFairness(): Promise<Figure[]> {
  const figures: Figure[] = [];
  const add = (backend: string, outcome: Outcome) => {
    figures.push({ name: `${backend}: flood jobs started after the user's start, before the user's job`, value: outcome.overtaking, unit: 'jobs' });
    figures.push({ name: `${backend}: flood jobs started before the user's job, in all`, value: outcome.before, unit: 'jobs' });
    figures.push({ name: `${backend}: the user's job waited`, value: outcome.waitMs, unit: 'ms' });
  };
  add('memory', await measure(memory()));
  const dir = mkdtempSync(join(tmpdir(), 'backjob-bench-fair-'));
  try {
    add('sqlite', await measure(sqlite({ file: join(dir, 'jobs.db') })));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const server = await startRedis();
  try {
    add('redis', await measure(redis({ url: server.url, prefix: `fair-${randomUUID()}` })));
  } finally {
    await server.stop();
  }
  return figures;
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  for (const figure of await benchFairness()) console.log(`${figure.name}: ${figure.value} ${figure.unit}`);
  process.exit(0);
}
