/**
 * The Redis backend: many web processes and workers, one view of every job.
 *
 * - store: job rows and per-job event logs (Redis Streams) — `redis-store.ts`
 * - bus: Redis pub/sub, with catch-up from the store after an outage — `redis-bus.ts`
 * - queue: BullMQ (delay, concurrency, locks, stalled-job detection)
 *
 * ```ts
 * const backjob = createBackJob({ backend: redis({ url: 'redis://127.0.0.1:6379' }), worker: false });
 * ```
 *
 * Web processes use `worker: false` and only enqueue; worker processes
 * (`createWorker` in `server/worker.ts`) consume. Enable AOF with
 * `appendfsync always` on the server if an acknowledged event must survive a
 * Redis crash: a write resolves when Redis replies, and only then is it durable.
 */
import { hostname } from 'node:os';
import { DelayedError, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { settlesWithin } from '../settle.js';
import type { Backend, JobBus, JobQueue, JobRecord, JobStore, RunOutcome } from '../types.js';
import { RedisJobBus } from './redis-bus.js';
import { RedisJobStore } from './redis-store.js';

/** Options of {@link redis}. */
export interface RedisBackendOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). */
  url: string;
  /** Prefix of every key and channel, so several apps can share one Redis. Default `backjob`. */
  prefix?: string;
  /**
   * Milliseconds a worker holds a job's lock without renewing it (BullMQ
   * `lockDuration`). A worker that dies is noticed after about this long plus
   * `stalledInterval`. Default 30,000.
   */
  lockDuration?: number;
  /** Milliseconds between BullMQ's checks for jobs whose worker is gone. Default 30,000. */
  stalledInterval?: number;
}

/** The failure code of a job whose worker disappeared while running it (and had no retries left). */
export const WORKER_LOST = 'BACKJOB_ERR_WORKER_LOST';

const QUEUE_NAME = 'jobs';

/** A job a worker hands back (it is closing) waits this long before any worker takes it again. */
const HAND_BACK_DELAY_MS = 1_000;

/** How core names this process in `JobRecord.runner` (`host:pid:…`). */
const THIS_PROCESS = `${hostname()}:${process.pid}:`;

function positive(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new TypeError(`Expected \`${name}\` to be a positive number of milliseconds, got \`${String(value)}\` (${typeof value})`);
  }
  return value;
}

/**
 * Hands jobs to workers through BullMQ. A BullMQ job carries only our job id;
 * everything else is in the store. When BullMQ hands out a job that the store
 * says is already running, its worker was lost (the lock expired and BullMQ's
 * stalled check put it back): the job is retried if it has retries left and
 * failed as "worker lost" otherwise, and watchers see either on the bus.
 */
class BullJobQueue implements JobQueue {
  readonly #connection: Redis;
  readonly #prefix: string;
  readonly #store: JobStore;
  readonly #bus: JobBus;
  readonly #lockDuration: number;
  readonly #stalledInterval: number;
  #queue: Queue | null = null;
  #worker: Worker | null = null;
  /** Jobs added to BullMQ along with their creation (`addWithCreate`), for `enqueue` to skip once. */
  readonly #addedWithCreate = new Set<string>();

  constructor(connection: Redis, prefix: string, store: JobStore, bus: JobBus, options: { lockDuration?: number; stalledInterval?: number }) {
    this.#connection = connection;
    this.#prefix = prefix;
    this.#store = store;
    this.#bus = bus;
    this.#lockDuration = options.lockDuration ?? 30_000;
    this.#stalledInterval = options.stalledInterval ?? 30_000;
  }

  get #bull(): Queue {
    if (!this.#queue) {
      this.#queue = new Queue(QUEUE_NAME, { connection: this.#connection, prefix: this.#prefix });
      // Connection errors are retried by ioredis (a failed call rejects to its caller); without a
      // listener BullMQ prints every one of them to stderr while Redis is away.
      this.#queue.on('error', () => {});
    }
    return this.#queue;
  }

  async enqueue(job: JobRecord): Promise<void> {
    if (this.#addedWithCreate.delete(job.id)) return;
    await this.#add(job);
  }

  /** Adds a job the store is creating (see `RedisJobStore`); the `enqueue` that follows is then a no-op. */
  async addWithCreate(job: JobRecord): Promise<void> {
    await this.#add(job);
    this.#addedWithCreate.add(job.id);
  }

  async #add(job: JobRecord): Promise<void> {
    await this.#bull.add(
      'run',
      { id: job.id },
      {
        jobId: job.id,
        delay: Math.max(0, job.runAt - Date.now()),
        // The store keeps the history; BullMQ only needs to know what is left to run.
        removeOnComplete: true,
        removeOnFail: true,
      },
    );
  }

  async remove(jobId: string): Promise<void> {
    // 0 when a worker holds the job: then it hears the job:canceled end on the bus instead.
    await this.#bull.remove(jobId);
  }

  process(run: (jobId: string) => Promise<RunOutcome>, concurrency: number): void {
    if (this.#worker) throw new Error('This queue is already being processed');
    this.#worker = new Worker(
      QUEUE_NAME,
      async (bullJob, token) => {
        const jobId = bullJob.id!;
        if (bullJob.stalledCounter > 0) {
          // Handed out again because BullMQ found its worker's lock expired.
          // (A run of this very process still at it: `run` holds the job until that run ends.)
          const job = await this.#store.get(jobId);
          if (job?.status === 'running' && job.retriesLeft <= 0 && !job.runner?.startsWith(THIS_PROCESS)) {
            return this.#failLost(jobId);
          }
        }
        if ((await run(jobId)) === 'later') {
          // Not run here, or left for a retry, by a worker that is closing: completing the BullMQ
          // job would lose it, so it goes back to the queue for another worker.
          await bullJob.moveToDelayed(Date.now() + HAND_BACK_DELAY_MS, token);
          throw new DelayedError();
        }
      },
      {
        connection: this.#connection,
        prefix: this.#prefix,
        concurrency,
        lockDuration: this.#lockDuration,
        stalledInterval: this.#stalledInterval,
        // Every stall comes back to the processor above, which applies the job's
        // own retry rule; BullMQ's count would fail it behind the store's back.
        maxStalledCount: Number.MAX_SAFE_INTEGER,
        removeOnComplete: { count: 0 },
        removeOnFail: { count: 0 },
      },
    );
    // Connection errors are retried by ioredis; the worker must not crash the process over them.
    this.#worker.on('error', () => {});
  }

  async #failLost(jobId: string): Promise<void> {
    const [result] = await this.#store.append([
      { jobId, events: [{ type: 'job:failed', reason: 'worker lost', code: WORKER_LOST }], runner: null },
    ]);
    if (result?.events.length) await this.#bus.publish({ type: 'events', jobId, events: result.events });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    if (worker) {
      // Give running jobs a moment to settle (core aborts them before closing
      // the backend); a job still held after that is left to stalled detection.
      if (!(await settlesWithin(worker.close(), 5_000))) await settlesWithin(worker.close(true), 1_000);
    }
    await this.#queue?.close();
  }
}

/**
 * A Redis backend: jobs shared by every process using the same `url` and
 * `prefix`, work distributed to workers by BullMQ.
 *
 * @example
 * // web.ts — serves pages and the API, never runs jobs
 * const backjob = createBackJob({ backend: redis({ url: process.env.REDIS_URL! }), worker: false, baseUrl: 'http://app.internal:3000' });
 * // worker.ts — runs them (see `createWorker`)
 */
export function redis(options: RedisBackendOptions): Backend {
  if (typeof options?.url !== 'string' || !/^rediss?:\/\//.test(options.url)) {
    throw new TypeError(`Expected \`url\` to be a redis:// or rediss:// URL, got \`${String(options?.url)}\` (${typeof options?.url})`);
  }
  const prefix = options.prefix ?? 'backjob';
  if (typeof prefix !== 'string' || !/^[\w.:-]{1,64}$/.test(prefix)) {
    throw new TypeError(`Expected \`prefix\` to be 1–64 letters, digits or . : _ -, got \`${String(prefix)}\` (${typeof prefix})`);
  }
  const lockDuration = positive('lockDuration', options.lockDuration);
  const stalledInterval = positive('stalledInterval', options.stalledInterval);

  // Commands wait through an outage instead of failing after a few retries
  // (BullMQ requires this too); the store's writes are safe to resend.
  // `autoResubscribe: false` on the subscriber: the bus resubscribes after a reconnect itself (and
  // then catches up). ioredis's own resubscribe leaves its promise unhandled, so closing while a
  // reconnect finishes would reject it into an unhandled rejection ("Connection is closed.").
  const connect = (autoResubscribe = true) => {
    const client = new Redis(options.url, { maxRetriesPerRequest: null, autoResubscribe });
    // ioredis reconnects by itself; without a listener an 'error' event would crash the process.
    client.on('error', () => {});
    return client;
  };
  const connection = connect();
  const subscriber = connect(false);

  // The queue is on the store's connection: a job's creation and its BullMQ add go out back to back.
  const store = new RedisJobStore(connection, prefix, { enqueueWithCreate: (job): Promise<void> => queue.addWithCreate(job) });
  const bus = new RedisJobBus(connection, subscriber, store.keys.channel, store);
  const queue: BullJobQueue = new BullJobQueue(connection, `${prefix}:bull`, store, bus, { lockDuration, stalledInterval });

  return {
    name: 'redis',
    store,
    bus,
    queue,
    // BullMQ's stalled-job detection hands lost jobs back to a worker (see BullJobQueue).
    orphans: async () => [],
    claimOnce: (key, ttlMs) => store.claimOnce(key, ttlMs),
    async close() {
      await queue.close();
      await bus.close();
      await store.close();
      // QUIT waits for Redis, which may be down: then the connections are dropped.
      await Promise.all(
        [connection, subscriber].map(async (client) => {
          if (!(await settlesWithin(client.quit(), 1_000))) client.disconnect();
        }),
      );
    },
  };
}
