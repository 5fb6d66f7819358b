/**
 * The contracts of a backend: the job record, and the three pluggable parts
 * (store, bus, queue) every backend implements. Implementations live in
 * server/backends/; this module has no code.
 */
import type { JobEvent, JobEventData, JobSnapshot, JobStatus } from '../shared/protocol.js';

/** What a route job calls on the app. */
export interface RouteTarget {
  method: string;
  /** Path beginning with `/`, without query string. */
  path: string;
  query?: Record<string, string | string[]>;
  /**
   * The request body: at most 64 KiB once encoded,
   * since the receiving side reads it to check its digest before the app's
   * parsers do. Pass a reference to large data, not the data.
   */
  body?: Record<string, unknown>;
  /** How `body` is sent. Default `form` (application/x-www-form-urlencoded). */
  bodyType?: 'form' | 'json';
}

/** A job as the store keeps it: the public snapshot plus what only the server may see. */
export interface JobRecord extends JobSnapshot {
  kind: 'handler' | 'route';
  /** Handler params (handler jobs). */
  params?: unknown;
  /** The request to dispatch (route jobs). */
  route?: RouteTarget;
  /** Principal that started the job (`identify(req)`), or `null` for nobody/anonymous. */
  owner: string | null;
  /**
   * Whose turn it is in the queue, and whose waiting quota the job counts
   * against: `user:<principal>` for a request with a principal, `addr:<keyed
   * digest of the client address>` for an anonymous request, `app` for a
   * start without a request.
   * Absent on rows written before quotas existed: see `queueKeyOf`.
   */
  queueKey?: string;
  /** Identical waiting/running jobs share this key; `null` disables merging. */
  mergeKey: string | null;
  /** Earliest start, ms since epoch (`delay`). */
  runAt: number;
  /** Time of the last event, ms since epoch: drives `errorTimeout`. */
  updatedAt: number;
  /** Retries left after an interrupted run (crash, lost worker). */
  retriesLeft: number;
  /** Max run time in ms, 0 = none. */
  timeoutMs: number;
  /** Seconds without an event before the job fails as stalled, 0 = never. */
  errorTimeout: number;
  /** Process running the job (for interrupted-job recovery), or `null`. */
  runner: string | null;
  /**
   * The top of the job's family (its parent's root, or its parent when that is
   * a root); absent for a job nobody spawned. Retention keeps or removes a
   * family as one, by its root.
   */
  root?: string;
  /** The place of a child among its parent's spawns (0, 1, …): a re-run parent finds the child it spawned there rather than spawning it again. */
  spawn?: number;
  /** A batch: how many members it has (it ends when that many ended). */
  members?: number;
  /** A child's share of its parent's progress (default 1). */
  weight?: number;
}

/** What `JobStore.create` receives: a record before its first event. */
export type NewJob = Omit<JobRecord, 'seq' | 'logLines' | 'attempt' | 'status' | 'progress' | 'text' | 'updatedAt'> & {
  /**
   * Encrypted credentials of an as-user route job, kept apart from the row and
   * deleted when taken (`takeCredentials`).
   */
  credentials?: string;
};

/** Result of an append for one job. */
export interface AppendResult {
  /** The events as stored, numbered. Empty when the job had already ended (ended is final). */
  events: JobEvent[];
  /** The job after the append, or `null` if the job does not exist. */
  job: JobRecord | null;
}

/**
 * Persists job rows and their ordered event logs. The store numbers events
 * (seq) and enforces "ended is final" atomically, so concurrent writers in
 * several processes cannot corrupt a job. Every implementation passes the
 * shared contract suite in `server/testing/store-contract.ts`.
 */
/** Which jobs `list` returns, newest first. */
export interface ListFilter {
  /** Jobs of this principal; `null`: jobs nobody owns; absent: everyone's. */
  owner?: string | null;
  /** The children of this job (or the members of this batch); `null`: only jobs nobody spawned (a user's own list, without a batch's thousand members). */
  parent?: string | null;
  status?: JobStatus | JobStatus[];
  limit?: number;
  /** The page after this job: what the last job of the previous page was (see {@link JobCursor}). */
  before?: JobCursor;
}

/** Where a page of a list ended: its last job's creation time and id. */
export interface JobCursor {
  createdAt: number;
  id: string;
}

export interface JobStore {
  /**
   * Creates a job with its `job:created` event (seq 1). When `mergeKey` is set
   * and a waiting or running job has the same key, creates nothing and
   * returns that job with `merged: true`. Atomic.
   *
   * With `maxWaiting` > 0, a job that would not merge is refused, with a
   * `BackjobError` (`BACKJOB_ERR_QUOTA`, see `overQuota`), when that many jobs
   * of its `queueKey` are already waiting: the count and the insert are one
   * atomic step, so concurrent creates cannot overshoot. A merge is never refused.
   */
  create(job: NewJob, options?: { maxWaiting?: number }): Promise<{ job: JobRecord; merged: boolean }>;
  /**
   * Appends events to several jobs in one durable write (group commit): the
   * promise resolves only once everything is on disk. Each job's events get
   * the next seqs, are folded into its row (`applyEvent`), and anything after
   * an end event is dropped. `runner` sets/clears `JobRecord.runner` with a
   * `job:start` / end event. A stored `job:start` with `attempt > 1` (a re-run
   * after an interrupted run) uses up one of `retriesLeft`. The shared rules
   * are in `server/backends/records.ts` (`appendToRecord`).
   */
  append(batch: Array<{ jobId: string; events: JobEventData[]; runner?: string | null }>): Promise<AppendResult[]>;
  get(id: string): Promise<JobRecord | null>;
  /** Events with seq > `afterSeq`, ascending, at most `limit`. */
  eventsAfter(id: string, afterSeq: number, limit: number): Promise<JobEvent[]>;
  /** Newest first. */
  list(filter: ListFilter): Promise<JobRecord[]>;
  /** Reads and deletes a job's stored credentials (once). An end deletes them too, in the same write: they never outlive the job. */
  takeCredentials(id: string): Promise<string | null>;
  /**
   * Deletes ended jobs (rows, events, credentials): completed ones that ended
   * before `completedBefore`, and any ended ones that ended before
   * `endedBefore`. Never touches waiting or running jobs. A family goes as
   * one: by its root (the root's end decides), with every descendant, and
   * only once all of them ended; a child is never deleted on its own.
   * Returns how many jobs were deleted.
   */
  deleteEnded(opts: { completedBefore?: number; endedBefore?: number }): Promise<number>;
  /**
   * A random secret created on first use and kept with the data, used when the
   * app configures no `key`, so tokens survive a restart.
   */
  secret(): Promise<string>;
  close(): Promise<void>;
}

/**
 * Cross-process notification that new events were stored for a job. In one
 * process, a plain emitter. A cancel needs no message of its own: it is the
 * `job:canceled` end, and whoever runs the job aborts its signal on hearing it.
 */
export type BusMessage = { type: 'events'; jobId: string; events: JobEvent[] };

/**
 * What a bus tells its listeners: the messages, and `resync` when it may have
 * missed some (its connection to other processes dropped and is back). A
 * listener that keeps per-job state then re-reads it from the store.
 */
export type BusNotice = BusMessage | { type: 'resync' };

export interface JobBus {
  publish(message: BusMessage): Promise<void>;
  /** Returns an unsubscribe function. */
  subscribe(listener: (notice: BusNotice) => void): () => void;
  close(): Promise<void>;
}

/**
 * Hands due jobs to a processor, at most `concurrency` at once across the
 * queue's consumers, in turns across queue keys (`JobRecord.queueKey`), so
 * one owner's flood cannot hold back everyone else's jobs. Local: an
 * in-memory queue with timers. Redis: a fair queue with leases, in Lua scripts.
 */
/** What became of a job the queue handed to this process (see {@link JobQueue.process}). */
export type RunOutcome = 'done' | 'later';

/** What the queue knows of a job it hands over (see {@link JobQueue.process}). */
export interface Handover {
  /**
   * The job was handed out before, and the worker that took it went silent
   * (its lock lapsed: the process died or hangs). If the store still says it
   * runs and no run of this process holds it, its worker is lost. The queue
   * only reports this: what becomes of the job is core's to decide and write.
   */
  lost: boolean;
  /**
   * The job's row, when the queue read it in the same step as taking the job
   * (null: there is no such job): the processor then needs no read of its own.
   */
  job?: JobRecord | null;
}

export interface JobQueue {
  /**
   * Schedules a created job to run at `job.runAt`. Idempotent per job id:
   * recovery at start-up re-enqueues waiting jobs that may already be queued.
   */
  enqueue(job: JobRecord): Promise<void>;
  /** Drops a waiting job from the schedule (cancel before start). */
  remove(jobId: string): Promise<void>;
  /**
   * Starts consuming. `run` resolves when the job's run here is over: `'done'`
   * (it ended, or there was nothing to run), or `'later'` (this process is
   * closing and did not run it, or left it for a retry): a queue shared with
   * other workers hands it back to run elsewhere; a local queue drops it, for
   * the next start-up. Only processes that run work call this (web-only
   * processes in a Redis deployment don't). A queue never writes job state
   * itself: it reports what it noticed in the {@link Handover}.
   */
  process(run: (jobId: string, handover: Handover) => Promise<RunOutcome>, concurrency: number): void;
  close(): Promise<void>;
}

/** A persistence and distribution choice: memory, SQLite (default) or Redis. */
export interface Backend {
  readonly name: string;
  readonly store: JobStore;
  readonly bus: JobBus;
  readonly queue: JobQueue;
  /**
   * Jobs left `running` by a process that is gone, for recovery at start-up
   * (local backends: every running job; Redis: the queue's sweep of lapsed
   * leases does this instead and this returns nothing).
   */
  orphans(): Promise<JobRecord[]>;
  /**
   * Called once, before recovery, by a process that runs jobs (`worker`):
   * resolves when this process may recover and run the backend's jobs.
   * Optional: only a backend whose jobs one process runs needs it (SQLite:
   * one process per file), and waits here while another process runs them.
   * Rejects when it cannot have them, or when `signal` aborts first (the
   * shim closing); `close()` lets go.
   */
  lockRunner?(signal: AbortSignal): Promise<void>;
  /**
   * Claims `key` for `ttlMs` across every process sharing this backend: true
   * for the first caller, false while the claim lasts. Route dispatch uses it
   * to accept each signed request once. Optional: without it, claims are kept
   * in this process only (enough for one process; Redis: `SET NX PX`).
   */
  claimOnce?(key: string, ttlMs: number): Promise<boolean>;
  close(): Promise<void>;
}
