/**
 * The Redis backend: many web processes and workers, one view of every job.
 *
 * - store: job rows and per-job event logs (Redis Streams) — `store.ts`
 * - bus: Redis pub/sub, with catch-up from the store after an outage — `bus.ts`
 * - queue: BullMQ (delay, concurrency, locks, stalled-job detection), with a
 *   fair pick in front of it — `fair.ts`, its scripts in `lua/`
 *
 * Fairness across owners: BullMQ open source has no groups, and its
 * priorities would serve as a fair-queueing clock only roughly (a 2^21 cap to
 * wrap around, tags fixed at enqueue time while the clock moves at pick time,
 * delayed jobs coming due with stale tags). So BullMQ carries turns, one per
 * enqueued job, and a worker handed a turn asks a Lua script which job is
 * next, round-robin across owners; the turn then holds BullMQ's lock for that
 * job's run, so stalled detection, a worker dying mid-job, delays and hand-back
 * at shutdown work as they did when BullMQ carried the jobs themselves. The
 * pick remembers which job each turn took, so a turn handed out again after a
 * stall resumes that job (and the lost-worker rule below applies to it).
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
import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { settlesWithin } from '../../core/settle.js';
import type { Backend, Handover, JobQueue, JobRecord, RunOutcome } from '../../types.js';
import { queueKeyOf } from '../../core/records.js';
import { invalidOption, positiveOption } from '../../validate.js';
import { RedisJobBus } from './bus.js';
import { FairPick, fairPrefix, TURN } from './fair.js';
import { RedisJobStore } from './store.js';

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

export { WORKER_LOST } from '../../core/records.js';

const QUEUE_NAME = 'jobs';

/** A job a worker hands back (it is closing) waits this long before any worker takes it again. */
const HAND_BACK_DELAY_MS = 1_000;

function positive(name: string, value: unknown): number | undefined {
  return value === undefined ? undefined : positiveOption(name, value, 'number of milliseconds');
}

/**
 * Hands jobs to workers through BullMQ, fairly across owners (see the module
 * doc and `fair.ts`, its scripts in `lua/`). A BullMQ job is a turn and carries only the id of
 * the job it was added for; everything else is in the store. When a turn that
 * had taken a job is handed out again, its worker may be lost (the lock
 * expired and BullMQ's stalled check put the turn back): the queue says so
 * (`Handover.lost`) and core, the only writer of job state, retries the job or
 * fails it as "worker lost".
 */
class BullJobQueue implements JobQueue {
  readonly #connection: Redis;
  readonly #prefix: string;
  readonly #lockDuration: number;
  readonly #stalledInterval: number;
  readonly #fair: FairPick;
  readonly #store: RedisJobStore;
  #queue: Queue | null = null;
  #worker: Worker | null = null;
  /** Jobs added to BullMQ along with their creation (`addWithCreate`), for `enqueue` to skip once. */
  readonly #addedWithCreate = new Set<string>();

  constructor(
    connection: Redis,
    prefix: string,
    store: RedisJobStore,
    options: { lockDuration?: number; stalledInterval?: number },
  ) {
    this.#connection = connection;
    this.#prefix = prefix;
    this.#fair = new FairPick(connection, `${store.keys.prefix}:`, store.keys.row(''));
    this.#store = store;
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

  /**
   * Adds the turn of a job the store is creating, which its create script
   * lists for the fair pick (see `RedisJobStore`); the `enqueue` that follows
   * is then a no-op.
   */
  async addWithCreate(job: JobRecord): Promise<void> {
    await this.#addTurn(job);
    this.#addedWithCreate.add(job.id);
  }

  /**
   * Lists the job and adds a turn for it. Every call adds a turn, even when the
   * job was listed already (recovery re-enqueues what is waiting): a spare turn
   * takes nothing, while a listed job short of a turn (one lost in a crash
   * between the two steps) would wait forever. So turns get BullMQ's own ids,
   * never the job's, which would make a second turn for a job a no-op.
   */
  async #add(job: JobRecord): Promise<void> {
    // Listed first, on the same connection: by the time any worker has the turn, the job is there to take.
    const listed = this.#fair.enqueue(
      { id: job.id, queueKey: queueKeyOf(job), runAt: job.runAt },
      { bullJob: this.#bull.toKey(job.id), row: this.#store.keys.row(job.id) },
    );
    listed.catch(() => {}); // awaited below
    await this.#addTurn(job);
    await listed;
  }

  /** Adds a turn for a listed job (see `#add`). */
  async #addTurn(job: JobRecord): Promise<void> {
    await this.#bull.add(
      TURN,
      { id: job.id },
      {
        delay: Math.max(0, job.runAt - Date.now()),
        // The store keeps the history; BullMQ only needs to know what is left to run.
        removeOnComplete: true,
        removeOnFail: true,
      },
    );
  }

  async remove(jobId: string): Promise<void> {
    // A taken job's worker hears the job:canceled end on the bus instead. The turn stays:
    // removing it could leave another listed job without one (see fair.ts).
    const outcome = await this.#fair.remove(jobId, this.#bull.toKey(jobId));
    // 0 when a worker holds the job.
    if (outcome === 'legacy') await this.#bull.remove(jobId);
  }

  process(run: (jobId: string, handover: Handover) => Promise<RunOutcome>, concurrency: number): void {
    if (this.#worker) throw new Error('This queue is already being processed');
    this.#worker = new Worker(
      QUEUE_NAME,
      async (bullJob, token) => {
        if (bullJob.name !== TURN) return this.#runLegacy(bullJob, token, run);
        const turn = bullJob.id!;
        try {
          const picked = await this.#fair.pick(turn, (bullJob.data as { id: string }).id);
          if (!picked) return; // nothing due: a spare turn (its job was canceled, or taken by another turn)
          // The row as the pick read it: the run needs no read of its own, and its first write no read either.
          const job = picked.row === null ? null : (JSON.parse(picked.row) as JobRecord);
          if (picked.row !== null) this.#store.knowRow(picked.row);
          if ((await run(picked.id, { lost: picked.resumed, job })) === 'later') {
            // Not run here, or left for a retry, by a worker that is closing: completing the turn
            // would lose the job, so the turn goes back to the queue, still holding it, for another worker.
            return await this.#handBack(bullJob, token);
          }
          await this.#fair.finish(turn);
        } catch (error) {
          if (error instanceof DelayedError) throw error;
          // Whatever failed, the turn is not lost (BullMQ would drop a failed one, and its pick with
          // it): it comes back in a moment, still holding its job if it took one, and tries again.
          return this.#handBack(bullJob, token);
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

  /** Puts a BullMQ job back for another try in a moment (completing it would lose it). */
  async #handBack(bullJob: Job, token: string | undefined): Promise<never> {
    await bullJob.moveToDelayed(Date.now() + HAND_BACK_DELAY_MS, token);
    throw new DelayedError();
  }

  /** A BullMQ job added by an earlier version, which carried jobs themselves: run it first in, first out, as then. */
  async #runLegacy(bullJob: Job, token: string | undefined, run: (jobId: string, handover: Handover) => Promise<RunOutcome>): Promise<void> {
    if ((await run(bullJob.id!, { lost: bullJob.stalledCounter > 0 })) === 'later') return this.#handBack(bullJob, token);
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
    throw invalidOption('url', 'a redis:// or rediss:// URL', options?.url);
  }
  const prefix = options.prefix ?? 'backjob';
  if (typeof prefix !== 'string' || !/^[\w.:-]{1,64}$/.test(prefix)) {
    throw invalidOption('prefix', '1–64 letters, digits or . : _ -', prefix);
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
  const store = new RedisJobStore(connection, prefix, {
    fairPrefix: fairPrefix(`${prefix}:`),
    enqueueWithCreate: (job): Promise<void> => queue.addWithCreate(job),
  });
  const bus = new RedisJobBus(connection, subscriber, store.keys.channel, store);
  const queue: BullJobQueue = new BullJobQueue(connection, `${prefix}:bull`, store, { lockDuration, stalledInterval });

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
