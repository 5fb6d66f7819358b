/**
 * The in-process path on SQLite, measured: how fast the core turns reports
 * into durable events (group commit), and how many small jobs it gets
 * through. Standalone: `npx tsx bench/core.ts`.
 *
 * - events persisted per second for one job flooding progress and log lines
 *   (and how many store transactions that took);
 * - jobs per second for 1,000 jobs × 10 updates each, started in a loop,
 *   at the default concurrency (4).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { createBackJob, memory, sqlite } from '../server/index.js';
import type { Backend, BackJobOptions } from '../server/types.js';
import { KEY } from './kit.js';
import type { Figure } from './kit.js';


/** Counts `store.append` calls: one per group commit (one transaction on SQLite). */
function countAppends(backend: Backend): { count(): number } {
  let calls = 0;
  const append = backend.store.append.bind(backend.store);
  backend.store.append = (batch) => {
    calls++;
    return append(batch);
  };
  return { count: () => calls };
}

/** One job reports `iterations` × (progress + log line), yielding to the event loop every 1,000 like real work would. */
async function flood(backend: Backend, label: string, iterations: number): Promise<Figure[]> {
  const appends = countAppends(backend);
  const backjob = createBackJob({ backend, key: KEY, maxLogLines: iterations + 10 });
  try {
    let began = 0;
    let durable = 0;
    backjob.define('flood', async (job) => {
      began = performance.now();
      for (let i = 0; i < iterations; i++) {
        job.update(i % 101);
        job.log(`line ${i}: some output of a typical length, neither short nor long`);
        if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
      }
      await job.flush();
      durable = performance.now();
    });
    const before = appends.count();
    const { id } = await backjob.start({ name: 'flood' });
    await new Promise<void>((resolve) => backjob.once('job:completed', () => resolve()));
    const stored = (await backjob.status(id))!.seq;
    const events = iterations * 2;
    if (stored < events) throw new Error(`only ${stored} of ${events} events stored`);
    const seconds = (durable - began) / 1000;
    return [
      { name: `flood ${label}: events persisted per second (1 job, progress + log)`, value: Math.round(events / seconds), unit: 'events/s' },
      { name: `flood ${label}: store transactions for ${events.toLocaleString('en-US')} events`, value: appends.count() - before, unit: 'commits' },
    ];
  } finally {
    await backjob.close();
  }
}

/** `jobs` jobs started in a loop, each reporting `updates` progress updates. */
async function manyJobs(backend: Backend, jobs: number, updates: number, options: BackJobOptions = {}): Promise<Figure[]> {
  const backjob = createBackJob({ backend, key: KEY, merge: false, ...options });
  try {
    backjob.define('small', async (job) => {
      for (let i = 1; i <= updates; i++) job.update((i * 100) / updates);
      return 'ok';
    });
    let completed = 0;
    const allDone = new Promise<void>((resolve) =>
      backjob.on('job:completed', () => {
        if (++completed === jobs) resolve();
      }),
    );
    await backjob.ready;
    const began = performance.now();
    for (let i = 0; i < jobs; i++) await backjob.start({ name: 'small', params: i });
    const started = performance.now();
    await allDone;
    const seconds = (performance.now() - began) / 1000;
    const concurrency = options.concurrency ?? 4; // createBackJob's default
    return [
      { name: `${jobs.toLocaleString('en-US')} jobs × ${updates} updates, concurrency ${concurrency}: jobs per second`, value: Math.round(jobs / seconds), unit: 'jobs/s' },
      { name: `  of which starting them (start() in a loop)`, value: Math.round(started - began), unit: 'ms' },
    ];
  } finally {
    await backjob.close();
  }
}

/** Runs the core benchmarks on SQLite files in a temp dir (plus the memory backend for comparison). */
export async function benchCore(): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'backjob-bench-core-'));
  try {
    return [
      ...(await flood(sqlite({ file: join(dir, 'flood.db') }), 'SQLite', 100_000)),
      ...(await flood(memory(), 'memory', 100_000)),
      ...(await manyJobs(sqlite({ file: join(dir, 'jobs.db') }), 1000, 10)),
      ...(await manyJobs(sqlite({ file: join(dir, 'jobs32.db') }), 1000, 10, { concurrency: 32 })),
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const { name, value, unit } of await benchCore()) console.log(`${name.padEnd(72)} ${String(value).padStart(10)} ${unit}`);
}
