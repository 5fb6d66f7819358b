/**
 * The Redis backend: many web processes and workers, one view of every job.
 *
 * - store: job rows and per-job event logs (Redis Streams) — `store.ts`
 * - bus: Redis pub/sub, with catch-up from the store after an outage — `bus.ts`
 * - queue: a fair queue with leases, in Lua scripts — `fair.ts`, its scripts
 *   in `lua/`, driven by {@link LeasedJobQueue} below
 *
 * A worker claims jobs for all its free slots in one script call, which picks
 * them round-robin across owners and records a lease for each (job → this
 * worker, until an expiry); the same call releases the leases of the runs
 * that ended since the last one. A timer renews all the worker's leases in one
 * call; another, on every worker, sweeps jobs whose lease lapsed (their worker
 * died or hangs) back into the queue, marked lost, so core retries them or
 * fails them as "worker lost". An idle worker sleeps until a listing publishes
 * on the queue's wake channel, or until the next delayed job is due (the claim
 * says when): no polling, except a slow fallback on the sweep's timer in case
 * a wake was missed during an outage. A closing worker hands back what it did
 * not run: released, due again in a moment, for another worker.
 *
 * Why not BullMQ, which did all this before: BullMQ open source has no groups
 * for fairness, so it carried one "turn" per job, and every job then paid
 * BullMQ's add, moveToActive and moveToFinished (and now and then a blocking
 * fetch) on top of our pick and finish: five script calls besides the
 * create, and BullMQ's own work around them, about 190 µs of this process's
 * 810 per job in the Redis benchmark; the leases cost about 20 (one claim per
 * three jobs there, see `fair.ts`). Jobs and turns an earlier version left in Redis still run (see
 * `#migrate`): the fair listing was already the truth for turn-era jobs, and a
 * BullMQ worker is created only when the old queue still holds something.
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
import { randomBytes } from 'node:crypto';
// Types only: BullMQ is loaded when what an earlier version left in it needs draining (see `#migrate`).
import type { Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { settlesWithin } from '../../core/settle.js';
import type { Backend, Handover, JobQueue, JobRecord, RunOutcome } from '../../types.js';
import { queueKeyOf } from '../../core/records.js';
import { invalidOption, positiveOption } from '../../validate.js';
import { RedisJobBus } from './bus.js';
import { FairPick, fairPrefix, type Claimed } from './fair.js';
import { RedisJobStore, type CreateHook } from './store.js';

/** Options of {@link redis}. */
export interface RedisBackendOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). */
  url: string;
  /** Prefix of every key and channel, so several apps can share one Redis. Default `backjob`. */
  prefix?: string;
  /**
   * Milliseconds a worker's lease on a job lasts without renewal (it renews
   * every half of it). A worker that dies is noticed after about this long
   * plus `stalledInterval`. Default 30,000.
   */
  lockDuration?: number;
  /** Milliseconds between each worker's sweeps for leases that lapsed (their worker is gone). Default 30,000. */
  stalledInterval?: number;
}

export { WORKER_LOST } from '../../core/records.js';

/** A job a worker hands back (it is closing) waits this long before any worker takes it again. */
const HAND_BACK_DELAY_MS = 1_000;

/** The earlier versions' BullMQ queue name (see `LeasedJobQueue#migrate`). */
const QUEUE_NAME = 'jobs';

function positive(name: string, value: unknown): number | undefined {
  return value === undefined ? undefined : positiveOption(name, value, 'number of milliseconds');
}

type RunJob = (jobId: string, handover: Handover) => Promise<RunOutcome>;

/** The BullMQ name of a turn, the job of the version before this one (see `#migrate`); one named `run` is older still. */
const TURN = 'turn';

/** Where BullMQ kept what is left to run, in the queue of an earlier version (under `<bull prefix>:jobs:`). */
const LEGACY_LISTS = ['wait', 'paused', 'delayed', 'prioritized', 'active', 'waiting-children'];

/** A step that failed (Redis closed, a script error) is tried again after this long. */
const RETRY_MS = 1_000;

/**
 * Most creations remembered for `enqueue` to skip. A caller that enqueues does
 * so right after the create, but one that fails in between (a batch refused
 * part-way) never does: the bound keeps such leftovers from adding up. An
 * entry dropped too early costs only a redundant (idempotent) listing.
 */
const MAX_ADDED_WITH_CREATE = 10_000;

/** Most lapsed leases one sweep puts back (`lua/fair-sweep.lua`). */
const SWEEP_BATCH = 1_000;

/**
 * Hands jobs to workers fairly across owners, under leases (see the module
 * doc and `fair.ts`, its scripts in `lua/`). The queue never writes job
 * state: when a claimed job had been taken before by a worker that lost it
 * (its lease lapsed, or it handed the job back), it says so
 * (`Handover.lost`) and core retries the job or fails it as "worker lost".
 */
class LeasedJobQueue implements JobQueue {
  readonly #connection: Redis;
  readonly #subscribe: () => Redis;
  readonly #bullPrefix: string;
  readonly #lockDuration: number;
  readonly #stalledInterval: number;
  readonly #fair: FairPick;
  readonly #store: RedisJobStore;
  /** This worker's name in the leases: random, so a restarted process never renews a lease of its previous life. */
  readonly #worker = randomBytes(8).toString('hex');
  #run: RunJob | null = null;
  #concurrency = 0;
  /** Slots in use: runs here, legacy runs, and slots a claim in flight may fill. */
  #active = 0;
  /** Jobs whose lease this worker holds (renewed on a timer until released). */
  readonly #held = new Set<string>();
  /** Runs over, whose lease the next claim releases. */
  #finished: string[] = [];
  /** Jobs to hand back (the run said `later`, or failed to begin), released with a delay. */
  #handBacks: string[] = [];
  readonly #runs = new Set<Promise<void>>();
  #stepping: Promise<void> | null = null;
  #again = false;
  #scheduled = false;
  #closing = false;
  #dueTimer: NodeJS.Timeout | null = null;
  #dueAt = Infinity;
  #retryTimer: NodeJS.Timeout | null = null;
  readonly #timers: NodeJS.Timeout[] = [];
  #subscriber: Redis | null = null;
  /** Legacy runs waiting for a free slot. */
  readonly #slotWaiters: Array<() => void> = [];
  /** Drains what an earlier version left in BullMQ, only while it holds something (see `#migrate`). */
  #legacy: Worker | null = null;
  #legacyQueue: Queue | null = null;
  /** Jobs listed along with their creation (`addWithCreate`), for `enqueue` to skip once. */
  readonly #addedWithCreate = new Set<string>();

  constructor(
    connection: Redis,
    subscribe: () => Redis,
    bullPrefix: string,
    store: RedisJobStore,
    options: { lockDuration?: number; stalledInterval?: number },
  ) {
    this.#connection = connection;
    this.#subscribe = subscribe;
    this.#bullPrefix = bullPrefix;
    this.#fair = new FairPick(connection, `${store.keys.prefix}:`, store.keys.row(''));
    this.#store = store;
    this.#lockDuration = options.lockDuration ?? 30_000;
    this.#stalledInterval = options.stalledInterval ?? 30_000;
  }

  /** BullMQ's key of a job with this id: only an earlier version gave BullMQ jobs the job's id. */
  #bullKey(id: string): string {
    return `${this.#bullPrefix}:${QUEUE_NAME}:${id}`;
  }

  /** The earlier version's BullMQ queue, for removing its jobs. */
  async #bull(): Promise<Queue> {
    if (!this.#legacyQueue) {
      const { Queue } = await import('bullmq');
      this.#legacyQueue ??= new Queue(QUEUE_NAME, { connection: this.#connection, prefix: this.#bullPrefix });
      // Connection errors are retried by ioredis; without a listener BullMQ prints every one of them.
      this.#legacyQueue.on('error', () => {});
    }
    return this.#legacyQueue;
  }

  async enqueue(job: JobRecord): Promise<void> {
    if (this.#addedWithCreate.delete(job.id)) return;
    await this.#fair.enqueue(
      { id: job.id, queueKey: queueKeyOf(job), runAt: job.runAt },
      { bullJob: this.#bullKey(job.id), row: this.#store.keys.row(job.id) },
    );
  }

  /**
   * The store's create script lists each job it creates for the fair queue
   * in the same step (see `RedisJobStore`), so the `enqueue` that follows is a
   * no-op and a start costs one round trip. When this worker has a slot free,
   * the script may lease it the job right away (if nothing else is due: the
   * job a claim would take anyway), which spares the wake and the claim.
   */
  readonly createHook: CreateHook = {
    lease: () => {
      if (!this.#run || this.#closing || this.#active >= this.#concurrency) return null;
      this.#active++; // the slot, until the create settles
      return { worker: this.#worker, expiry: Date.now() + this.#lockDuration };
    },
    settled: (job, lease, outcome, json) => {
      if (outcome !== 'failed') {
        this.#addedWithCreate.add(job.id);
        // The oldest first: a Set iterates in insertion order.
        if (this.#addedWithCreate.size > MAX_ADDED_WITH_CREATE) this.#addedWithCreate.delete(this.#addedWithCreate.values().next().value!);
      }
      if (!lease) return;
      if (outcome === 'leased') this.#begin({ id: job.id, resumed: false, row: json }, false);
      else this.#freeSlot();
    },
  };

  async remove(jobId: string): Promise<void> {
    // A claimed job's worker hears the job:canceled end on the bus instead, and its run ends.
    const outcome = await this.#fair.remove(jobId, this.#bullKey(jobId));
    if (outcome === 'legacy') await (await this.#bull()).remove(jobId);
  }

  process(run: RunJob, concurrency: number): void {
    if (this.#run) throw new Error('This queue is already being processed');
    this.#run = run;
    this.#concurrency = concurrency;
    // Its own connection: a subscriber can send nothing else. It resubscribes itself after a
    // reconnect (see `redis()`), and claims then, in case a wake went by meanwhile.
    const subscriber = (this.#subscriber = this.#subscribe());
    subscriber.on('ready', () => {
      if (this.#closing) return;
      subscriber.subscribe(this.#fair.wakeChannel).catch(() => {});
      this.#schedule();
    });
    // Whatever the slots look like now: a claim in flight reserves them all, and may have run in
    // Redis just before the listing this wake is about; the step after it claims again.
    subscriber.on('message', () => this.#schedule());
    const every = (ms: number, tick: () => void) => {
      const timer = setInterval(tick, ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(Math.max(1, Math.floor(this.#lockDuration / 2)), () => this.#renew());
    every(this.#stalledInterval, () => {
      this.#sweep();
      // The slow fallback for a wake missed while Redis was away.
      this.#schedule();
      if (this.#legacy) void this.#legacyDrained();
    });
    void this.#migrate().finally(() => this.#schedule());
  }

  /**
   * What an earlier version left: jobs its turns had taken get leases, which
   * lapse unless those runs end (so a job whose worker died then is put back as
   * lost, as BullMQ's stalled check would have); the turns themselves and
   * BullMQ jobs named `run` (older still, carrying the job) go to a BullMQ
   * worker, created only if BullMQ still holds any. A turn's job is in the
   * fair listing already, so the turn is just completed.
   */
  async #migrate(): Promise<void> {
    try {
      await this.#fair.adopt('turn-era', this.#lockDuration);
      if ((await this.#legacyLeft()) && !this.#closing) await this.#drainLegacy();
    } catch {
      // Closed before Redis answered: the next start migrates.
    }
  }

  async #drainLegacy(): Promise<void> {
    let bullmq: typeof import('bullmq');
    try {
      bullmq = await import('bullmq');
    } catch (error) {
      // Not installed: say so (those jobs wait until it is), rather than fail the worker.
      process.emitWarning(`BackJob: jobs queued in BullMQ by an earlier version wait until bullmq is installed (${String(error)})`);
      return;
    }
    const { DelayedError, Worker } = bullmq;
    if (this.#closing) return;
    this.#legacy = new Worker(
      QUEUE_NAME,
      async (bullJob, token) => {
        if (bullJob.name === TURN) return;
        await this.#legacySlot();
        try {
          if ((await this.#runLegacy(bullJob)) === 'later') {
            // Completing it would lose the job: back to BullMQ for another worker, in a moment.
            await bullJob.moveToDelayed(Date.now() + HAND_BACK_DELAY_MS, token);
            throw new DelayedError();
          }
        } finally {
          this.#freeSlot();
        }
      },
      {
        connection: this.#connection,
        prefix: this.#bullPrefix,
        concurrency: 1,
        lockDuration: this.#lockDuration,
        stalledInterval: this.#stalledInterval,
        // Every stall comes back to the processor, which applies the job's own retry rule.
        maxStalledCount: Number.MAX_SAFE_INTEGER,
        removeOnComplete: { count: 0 },
        removeOnFail: { count: 0 },
      },
    );
    // Connection errors are retried by ioredis; the worker must not crash the process over them.
    this.#legacy.on('error', () => {});
  }

  /** Whether the earlier version's BullMQ queue still holds anything to run. */
  async #legacyLeft(): Promise<boolean> {
    return (await this.#connection.exists(...LEGACY_LISTS.map((list) => `${this.#bullPrefix}:${QUEUE_NAME}:${list}`))) > 0;
  }

  /** Closes the legacy worker once BullMQ holds nothing more. */
  async #legacyDrained(): Promise<void> {
    try {
      const worker = this.#legacy;
      if (!(await this.#legacyLeft()) && worker && !this.#closing) {
        this.#legacy = null;
        await worker.close();
      }
    } catch {
      // Asked again at the next sweep.
    }
  }

  /** A BullMQ job added by an earlier version, which carried jobs themselves: run it first in, first out, as then. */
  #runLegacy(bullJob: Job): Promise<RunOutcome> {
    return this.#run!(bullJob.id!, { lost: bullJob.stalledCounter > 0 });
  }

  async #legacySlot(): Promise<void> {
    while (this.#active >= this.#concurrency) await new Promise<void>((resolve) => this.#slotWaiters.push(resolve));
    this.#active++;
  }

  #freeSlot(): void {
    this.#active--;
    this.#slotWaiters.shift()?.();
    this.#schedule();
  }

  /** One step soon, for everything that asked meanwhile (runs ending, wakes). */
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#step();
    });
  }

  /** Releases and claims until there is nothing to do (one step at a time). */
  #step(): Promise<void> {
    if (this.#stepping) {
      this.#again = true;
      return this.#stepping;
    }
    this.#stepping = (async () => {
      do this.#again = false;
      while ((await this.#stepOnce()) && this.#again);
    })().finally(() => {
      this.#stepping = null;
      if (this.#again) this.#schedule();
    });
    return this.#stepping;
  }

  /** One script call (two with hand-backs): whether it went through. */
  async #stepOnce(): Promise<boolean> {
    const want = this.#closing || !this.#run ? 0 : Math.max(0, this.#concurrency - this.#active);
    if (this.#finished.length === 0 && this.#handBacks.length === 0 && want === 0) return false;
    const finished = this.#finished;
    let backs = this.#handBacks;
    this.#finished = [];
    this.#handBacks = [];
    // Reserved while the claim is out, so a legacy run does not take them meanwhile.
    this.#active += want;
    let claimed: Claimed[];
    try {
      if (backs.length) {
        await this.#fair.release(this.#worker, backs, Date.now() + HAND_BACK_DELAY_MS);
        for (const id of backs) this.#held.delete(id);
        backs = [];
      }
      const { jobs, nextDue } = await this.#fair.claim(this.#worker, want, this.#lockDuration, finished);
      for (const id of finished) this.#held.delete(id);
      claimed = jobs;
      if (jobs.length < want) this.#wakeAt(nextDue);
    } catch {
      // The connection waits through outages, so this is a closed one, or a script error:
      // keep the releases (they only touch leases still held here) and try again in a moment.
      this.#finished.push(...finished);
      this.#handBacks.push(...backs);
      this.#active -= want;
      this.#retryLater();
      return false;
    }
    this.#active -= want - claimed.length;
    for (const job of claimed) this.#begin(job);
    return true;
  }

  /** Runs a job this worker now holds (`unknown` false: the store has its row in memory already). */
  #begin(claimed: Claimed, unknown = true): void {
    const { id } = claimed;
    this.#held.add(id);
    // The row as the claim read it: the run needs no read of its own, and its first write no read either.
    const job = claimed.row === null ? null : (JSON.parse(claimed.row) as JobRecord);
    if (claimed.row !== null && unknown) this.#store.knowRow(claimed.row);
    const running: Promise<void> = this.#run!(id, { lost: claimed.resumed, job })
      .then(
        // Not run here, or left for a retry, by a worker that is closing: handed back for another worker.
        (outcome) => void (outcome === 'later' ? this.#handBacks : this.#finished).push(id),
        () => void this.#handBacks.push(id),
      )
      .finally(() => {
        this.#runs.delete(running);
        this.#freeSlot();
      });
    this.#runs.add(running);
  }

  /** Claims again at `at`, when the next delayed job is due (null: none is). */
  #wakeAt(at: number | null): void {
    if (at === null || this.#closing || (this.#dueTimer && this.#dueAt <= at)) return;
    if (this.#dueTimer) clearTimeout(this.#dueTimer);
    this.#dueAt = at;
    this.#dueTimer = setTimeout(
      () => {
        this.#dueTimer = null;
        this.#dueAt = Infinity;
        this.#schedule();
      },
      Math.min(2 ** 31 - 1, Math.max(0, at - Date.now())),
    );
    this.#dueTimer.unref();
  }

  #retryLater(): void {
    if (this.#retryTimer || this.#closing) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#schedule();
    }, RETRY_MS);
    this.#retryTimer.unref();
  }

  /** Puts back jobs whose lease lapsed: a sweep takes at most 1,000, so a full one goes on at once. */
  #sweep(): void {
    this.#fair.sweep().then(
      (swept) => {
        if (swept >= SWEEP_BATCH && !this.#closing) this.#sweep();
      },
      () => {},
    );
  }

  /** Extends every lease held here; one lost meanwhile (it lapsed, and was swept) is no longer renewed. */
  #renew(): void {
    if (this.#held.size === 0) return;
    this.#fair.renew(this.#worker, [...this.#held], this.#lockDuration).then(
      (gone) => {
        for (const id of gone) this.#held.delete(id);
      },
      () => {},
    );
  }

  async close(): Promise<void> {
    this.#closing = true;
    if (this.#dueTimer) clearTimeout(this.#dueTimer);
    const legacy = this.#legacy;
    // Give running jobs a moment to settle (core aborts them before closing the backend); a job
    // still running after that keeps its lease until it lapses, and another worker's sweep puts it back.
    await Promise.all([
      settlesWithin(Promise.all(this.#runs), 5_000),
      legacy && settlesWithin(legacy.close(), 5_000).then((closed) => closed || settlesWithin(legacy.close(true), 1_000)),
    ]);
    // Releases what ended, and hands back what was left for later.
    await settlesWithin(this.#step(), 2_000);
    for (const timer of this.#timers) clearInterval(timer);
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    const subscriber = this.#subscriber;
    if (subscriber && !(await settlesWithin(subscriber.quit(), 1_000))) subscriber.disconnect();
    await this.#legacyQueue?.close();
  }
}

/**
 * A Redis backend: jobs shared by every process using the same `url` and
 * `prefix`, work handed to workers under leases, fairly across owners.
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

  // Commands wait through an outage instead of failing after a few retries;
  // the store's writes are safe to resend, and so are the queue's (see fair.ts).
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

  // The queue is on the store's connection; the store's create script lists each job for it (see fair.ts).
  const store = new RedisJobStore(connection, prefix, {
    fairPrefix: fairPrefix(`${prefix}:`),
    hook: { lease: (job) => queue.createHook.lease(job), settled: (...args) => queue.createHook.settled(...args) },
  });
  const bus = new RedisJobBus(connection, subscriber, store.keys.channel, store);
  const queue: LeasedJobQueue = new LeasedJobQueue(connection, () => connect(false), `${prefix}:bull`, store, { lockDuration, stalledInterval });

  return {
    name: 'redis',
    store,
    bus,
    queue,
    // The lease sweep hands lost jobs back to a worker (see LeasedJobQueue).
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
