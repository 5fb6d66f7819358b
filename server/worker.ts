/**
 * The entry of a worker process in a Redis deployment: a BackJob that runs
 * jobs and serves no HTTP.
 *
 * A Redis deployment has web processes, which serve pages, the HTTP API and
 * the WebSocket and only enqueue work (`createBackJob({ backend, worker: false })`),
 * and worker processes, which claim jobs from the Redis queue and run them. Both load the
 * same job definitions, usually from one shared module:
 *
 * ```ts
 * // jobs.ts — imported by web.ts and worker.ts alike
 * export function defineJobs(backjob: BackJob) {
 *   backjob.define('reports/build', async (job, params) => { … }, { launchable: true });
 * }
 *
 * // worker.ts — run with `node worker.js` (as many as you like, on any machine)
 * import { createWorker, redis } from 'backjob/redis';
 * import { defineJobs } from './jobs.js';
 *
 * const worker = createWorker({
 *   backend: redis({ url: process.env.REDIS_URL! }),
 *   baseUrl: 'http://app.internal:3000', // where route jobs call the app
 *   key: process.env.BACKJOB_KEY,        // the same key as the web processes
 *   concurrency: 8,
 *   jobs: defineJobs,
 * });
 * await worker.ready;
 * process.once('SIGTERM', () => void worker.close());
 * ```
 *
 * Progress, log lines and ends a worker writes reach every web process
 * through Redis, and from there every browser watching the job. A cancel from
 * any web process aborts the handler's `signal` here. When a worker dies
 * (crash, SIGKILL, lost machine), its lease on the job lapses and another
 * worker's sweep puts the job back for a worker, which re-runs it if the job was defined with
 * `retries` left, or fails it as "worker lost" (`BACKJOB_ERR_WORKER_LOST`).
 * `close()` lets running jobs end (their signals abort with reason
 * "shutdown") before the process exits.
 */
import { BackJobServer } from './shim.js';
import { DEFAULT_OPTIONS, OTHER_OPTIONS } from './core/options.js';
import { checkOptionsObject, invalidOption } from './validate.js';
import type { BackJobOptions } from './types.js';

/** Options of {@link createWorker}: those of `createBackJob`, with a backend shared by every process. */
export interface WorkerOptions extends Omit<BackJobOptions, 'worker' | 'backend'> {
  /** The backend the web processes use, normally `redis({ url })`. */
  backend: NonNullable<BackJobOptions['backend']>;
  /** Defines the jobs this worker runs (the same definitions the web processes have). */
  jobs?: (backjob: BackJobServer) => void;
}

/** Every option `createBackJob` knows but `worker`, and `jobs`. */
const WORKER_OPTIONS = [...Object.keys(DEFAULT_OPTIONS).filter((name) => name !== 'worker'), ...OTHER_OPTIONS, 'jobs'];

/**
 * Creates a worker: a BackJob that consumes jobs (`worker: true`) and serves
 * no HTTP. Await `ready` before relying on it; call `close()` on shutdown.
 *
 * Throws a `BackjobError` (`BACKJOB_ERR_INVALID`) without a backend: a worker
 * on a private in-process store would never see a job.
 */
export function createWorker(options: WorkerOptions): BackJobServer {
  if (options === undefined || options === null) throw invalidOption('options', 'an object with a `backend`', options);
  const { jobs, ...rest } = checkOptionsObject<Partial<WorkerOptions>>(options, WORKER_OPTIONS);
  if (!rest.backend) throw invalidOption('backend', 'the backend the web processes share, e.g. redis({ url })', rest.backend);
  if (jobs !== undefined && typeof jobs !== 'function') throw invalidOption('jobs', 'a function (backjob) => void', jobs);
  const backjob = new BackJobServer({ ...(rest as WorkerOptions), worker: true });
  jobs?.(backjob);
  return backjob;
}
