/**
 * The server's contracts: the job record, the three pluggable parts of a
 * backend (store, bus, queue), the job context handlers see, and the shim's
 * public API. Implementations live elsewhere; this module has no code.
 */
import type { IncomingMessage } from 'node:http';
import type { Request } from 'express';
import type { JobEvent, JobEventData, JobSnapshot, JobStatus } from '../shared/protocol.js';

export type { JobEvent, JobEventData, JobSnapshot, JobStatus } from '../shared/protocol.js';

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
   * `endedBefore`. Never touches waiting or running jobs. Returns how many.
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
 * in-memory queue with timers. Redis: BullMQ, with a fair pick in front.
 */
/** What became of a job the queue handed to this process (see {@link JobQueue.process}). */
export type RunOutcome = 'done' | 'later';

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
   * processes in a Redis deployment don't).
   */
  process(run: (jobId: string) => Promise<RunOutcome>, concurrency: number): void;
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
   * (local backends: every running job; Redis: BullMQ's stalled detection does
   * this instead and this returns nothing).
   */
  orphans(): Promise<JobRecord[]>;
  /**
   * Claims `key` for `ttlMs` across every process sharing this backend: true
   * for the first caller, false while the claim lasts. Route dispatch uses it
   * to accept each signed request once. Optional: without it, claims are kept
   * in this process only (enough for one process; Redis: `SET NX PX`).
   */
  claimOnce?(key: string, ttlMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** What a handler or a dispatched route gets to report on its job. */
export interface JobContext {
  readonly id: string;
  readonly params: unknown;
  /** Fires on cancel, timeout, stall or shutdown; `signal.reason` says which. */
  readonly signal: AbortSignal;
  /**
   * Sets progress (a number, clamped to 0–100; `null` for indeterminate) and/or
   * status text. Throws a `BackjobError` (`BACKJOB_ERR_INVALID`) for NaN, a
   * string, etc. Ignored once the job ended. Latest wins: reports made faster
   * than they are written are merged, so a tight loop of updates costs one
   * stored event per write, and watchers see the latest value.
   */
  update(progress: number | null): void;
  update(change: { progress?: number | null; text?: string }): void;
  /** Adds `n` (default 1) to progress. */
  increment(n?: number): void;
  /** Appends a line (several, if it contains newlines). Oversize lines are cut with a marker. */
  log(line: string): void;
  /**
   * Completes the job. Resolves once the end is durable. Throws a
   * `BackjobError` (`BACKJOB_ERR_INVALID`) for a result that is not JSON-serializable.
   */
  finish(result?: unknown): Promise<void>;
  /** Fails the job with a reason. Resolves once the end is durable. */
  fail(reason: string | Error): Promise<void>;
  /** Resolves once every event reported so far is durable. */
  flush(): Promise<void>;
}

export type JobHandler<P = any> = (job: JobContext, params: P) => unknown | Promise<unknown>;

export interface DefineOptions {
  /** Browsers may start it through the HTTP API / `<backjob-launcher>`. Default false. */
  launchable?: boolean;
  /** What people call the job ("Quarterly report"): the elements' default label. Default: the name, made readable. */
  title?: string;
  /** Re-run this many times after an interrupted run (crash, lost worker). Default 0. */
  retries?: number;
  /** Max run time in seconds. Default: the shim's `timeout`. */
  timeout?: number;
  /** Overrides the shim's `errorTimeout` (seconds). */
  errorTimeout?: number;
}

/** Options of `start()`. */
export interface StartOptions {
  /**
   * The request on whose behalf the job runs: its principal owns the job and,
   * for a route job, its cookies and Authorization header go along. `'anonymous'`
   * or absent: nobody owns it and no credentials go along.
   */
  as?: IncomingMessage | 'anonymous';
  /** Seconds to wait before starting. */
  delay?: number;
  /** Merge with an identical waiting/running job. Default: the shim's `merge`. */
  merge?: boolean;
  /**
   * Whether a start on behalf of a request counts against its owner's
   * `maxWaitingPerOwner`. Default true; `false` is for trusted app code that
   * starts jobs for a user on its own account. Starts without a request are
   * never limited.
   */
  quota?: boolean;
}

export interface StartResult {
  id: string;
  /** Watch token: lets whoever holds it watch and cancel this one job. */
  token: string;
  merged: boolean;
}

export type JobSpec =
  | { name: string; params?: unknown }
  | ({ route: string } & Partial<Omit<RouteTarget, 'path'>>);

/** Whether the proxy at `address`, `hop` steps from the server (0: the direct peer), is trusted: Express's `trust proxy fn`. */
export type TrustProxy = (address: string, hop: number) => boolean;

/** The `trustProxy` option, as Express's `trust proxy` setting takes it. */
export type TrustProxySetting = boolean | number | string | string[] | TrustProxy;

/** Options of `createBackJob`. Invalid values throw at construction. */
export interface BackJobOptions {
  /** Where jobs live. Default: `sqlite()`, a file `backjob.db` in the working directory. */
  backend?: Backend;
  /**
   * Secret for signed route dispatch (HMAC-SHA256) and watch tokens, ≥ 16
   * bytes. Default: a random secret kept by the store (`JobStore.secret`).
   */
  key?: string;
  /**
   * The app's notion of who is asking (its session or token): a user id (a
   * number is taken as its string), or null/undefined for nobody. Default: nobody.
   *
   * `req` is an Express request that went through the app's middleware (its
   * session, passport, a bearer token), as every route of the HTTP API and the
   * ticket the live channel presents get it: `(req) => req.session?.user`.
   * One exception: a WebSocket opened without a ticket (a non-browser client,
   * a page of an older version) is identified from its bare upgrade request, an
   * `http.IncomingMessage` with headers and cookies but nothing the app's
   * middleware adds, so `req.session` is undefined there: read such fields
   * with `?.`, as above, and the socket is nobody's.
   */
  identify?: (req: Request) => string | number | null | undefined | Promise<string | number | null | undefined>;
  /** Mount point of the HTTP API and the WebSocket. Default `/backjob`. */
  basePath?: string;
  /**
   * Base URL route jobs call, e.g. `http://127.0.0.1:3000`. Default: learned
   * from the server passed to `attach()`.
   */
  baseUrl?: string;
  /** Route paths browsers may launch (exact paths, or a prefix ending in `*`). Default none. */
  routes?: string[];
  /** Seconds without an event before a running job fails as stalled; 0 = never. Default 0. */
  errorTimeout?: number;
  /** Max run time of a job in seconds; 0 = none. Default 0. */
  timeout?: number;
  /** Jobs run at once by this process. Default 4. */
  concurrency?: number;
  /** Merge identical requests (same target, params and owner) while one waits or runs. Default true. */
  merge?: boolean;
  /**
   * Jobs one owner may have waiting (queued or delayed) at once, counted over
   * starts made for a request (`start(spec, { as: req })`, which is what the
   * HTTP API does): per principal, or per client address (`req.ip`, which
   * honours the app's `trust proxy`; IPv6 per /64) when anonymous. A start over
   * it is refused with `BACKJOB_ERR_QUOTA` (HTTP 429, `Retry-After`). A start
   * that merges into a waiting job is never refused; app code starting jobs
   * without a request is never limited. 0 = no limit. Default 20.
   */
  maxWaitingPerOwner?: number;
  /** Days to keep completed jobs; 0 = forever. Default 30. */
  backlogDays?: number;
  /** Days to keep any ended job; 0 = forever. Default 90. */
  allBacklogDays?: number;
  /** Log lines kept per job; later lines are dropped after one marker. Default 10,000. */
  maxLogLines?: number;
  /** Characters per log line; longer lines are cut with a marker. Default 4,096. */
  maxLineLength?: number;
  /** Whether this process runs jobs (false: a web-only process of a Redis deployment). Default true. */
  worker?: boolean;
  /**
   * Origins besides the app's own whose pages may use the HTTP API and the
   * live channel, e.g. `['https://admin.example']`: scheme, host and port
   * must match exactly. Default: none (same origin only).
   */
  allowedOrigins?: string[];
  /**
   * Which proxies may tell the request's scheme and host (`X-Forwarded-Proto`,
   * `X-Forwarded-Host`) for the origin check, in the forms Express's
   * `trust proxy` setting takes. Default: the setting of the Express app the
   * router is mounted in (and, until it served a request, nobody's).
   */
  trustProxy?: TrustProxySetting;
}

/** Handler signature of the typed server events. */
export interface BackJobEvents {
  'job:start': [job: JobRecord, event: JobEvent];
  'job:progress': [job: JobRecord, event: JobEvent];
  'job:log': [job: JobRecord, event: JobEvent];
  'job:completed': [job: JobRecord, event: JobEvent];
  'job:failed': [job: JobRecord, event: JobEvent];
  'job:canceled': [job: JobRecord, event: JobEvent];
  /** A job declared its steps, or one of them moved. */
  'job:steps': [job: JobRecord, event: JobEvent];
  'job:step': [job: JobRecord, event: JobEvent];
  /** A child (or batch member) of this job was spawned, progressed or ended. */
  'job:child': [job: JobRecord, event: JobEvent];
  /** An error the shim handled but an app may want to log (a listener that threw, a store hiccup). */
  error: [error: Error];
}

/** Who asks, for authorization: the principal from `identify`, and/or a watch token. */
export interface Access {
  principal?: string | null;
  token?: string;
}

/** Options after defaults were merged and validated. */
export type ResolvedOptions = Required<Omit<BackJobOptions, 'backend' | 'key' | 'identify' | 'baseUrl' | 'allowedOrigins' | 'trustProxy'>> &
  Pick<BackJobOptions, 'baseUrl'>;

/** A defined in-process job type. */
export interface Definition {
  name: string;
  handler: JobHandler;
  options: DefineOptions;
}

/** Options of `attach()`: the live channel. */
export interface AttachOptions {
  /** @deprecated Use `createBackJob({ allowedOrigins })`, which covers the HTTP API too. Origins allowed to open the WebSocket besides those. */
  allowedOrigins?: string[];
  /** Largest client frame in bytes. Default 16 KiB. */
  maxPayload?: number;
  /** Client messages per second per socket before it is told to slow down. Default 50. */
  rateLimit?: number;
  /** Heartbeat interval in ms: a peer that misses a ping round is terminated. Default 30 s. */
  heartbeat?: number;
}

/** The live channel attached to an `http.Server`. */
export interface Hub {
  /** Closes every client and stops routing upgrades. */
  close(): Promise<void>;
}

/** The shim: what `createBackJob` returns, the API an app uses. */
export interface BackJob {
  /** Resolves when the store is open, the key loaded and orphaned jobs recovered. */
  readonly ready: Promise<void>;

  define<P = any>(name: string, handler: JobHandler<P>, options?: DefineOptions): this;
  start(spec: JobSpec, options?: StartOptions): Promise<StartResult>;
  status(id: string): Promise<JobRecord | null>;
  /** Cancels a waiting or running job wherever it runs. False if it is unknown or already ended. */
  cancel(id: string, reason?: string): Promise<boolean>;
  list(filter?: ListFilter): Promise<JobRecord[]>;
  /**
   * The job, if `access` (a principal from `identify`, and/or a watch token)
   * may watch and cancel it; `null` both for unknown jobs and for forbidden
   * ones, so a guessed id learns nothing. For pages the app renders itself.
   */
  authorize(id: string, access: Access): Promise<JobRecord | null>;
  /** The watch token of a job, to embed in a page the app renders (stateless: an HMAC of its id). */
  tokenFor(id: string): string;

  on<E extends keyof BackJobEvents>(event: E, listener: (...args: BackJobEvents[E]) => void): this;
  off<E extends keyof BackJobEvents>(event: E, listener: (...args: BackJobEvents[E]) => void): this;
  once<E extends keyof BackJobEvents>(event: E, listener: (...args: BackJobEvents[E]) => void): this;

  /** Express router: the HTTP API under `basePath`, and the middleware that recognises dispatched requests. */
  router(): import('express').Router;
  /** Attaches the live channel (WebSocket) to the app's server, and learns `baseUrl` from it. */
  attach(server: import('node:http').Server, options?: AttachOptions): Hub;
  /** Stops running jobs (their signals abort with reason "shutdown"), closes the hub and the backend. */
  close(): Promise<void>;
}

/**
 * The route door as the core sees it: what turns a route spec into a stored
 * target (sealing the starting request's credentials), and what runs a route
 * job by calling the app. Implemented by server/dispatch, wired by the
 * composition root.
 * @internal
 */
export interface RouteDoor {
  prepare(target: RouteTarget, as: IncomingMessage | undefined): { route: RouteTarget; credentials?: string; credentialsDigest?: string };
  run(job: JobRecord, context: JobContext): Promise<void>;
}

/**
 * The one internal object the composition root hands to the doors (router,
 * live channel, dispatch): each door takes the narrow part it needs of it.
 * @internal
 */
export interface BackJobHost {
  readonly options: ResolvedOptions;
  readonly backend: Backend;
  readonly ready: Promise<void>;

  start(spec: JobSpec, options?: StartOptions): Promise<StartResult>;
  status(id: string): Promise<JobRecord | null>;
  cancel(id: string, reason?: string): Promise<boolean>;
  list(filter?: ListFilter): Promise<JobRecord[]>;

  /** The principal of a request (the `identify` option), or null. */
  identify(req: IncomingMessage): Promise<string | null>;
  /**
   * The job, if `access` may watch and cancel it: the owner's principal, or the
   * job's watch token. `null` both for unknown jobs and for forbidden ones, so a
   * guessed id learns nothing.
   */
  authorize(id: string, access: Access): Promise<JobRecord | null>;
  /** The watch token of a job (stateless: an HMAC of its id). */
  tokenFor(id: string): string;
  definition(name: string): Definition | undefined;
  /** Whether browsers may launch this route path (the `routes` option). */
  isLaunchableRoute(path: string): boolean;
  /** Whether a page at `origin` may drive BackJob through `req` (the one origin policy: see server/access/origin.ts). */
  originAllowed(origin: string, req: IncomingMessage): boolean;
  /** Remembers the Express app's `trust proxy` for requests Express never sees (WebSocket upgrades). */
  learnTrustProxy(trust: TrustProxy | undefined): void;
  /** The HMAC key, once `ready`. */
  key(): Buffer;
  /** True the first time `key` is claimed within `ttlMs`: across processes when the backend can (`claimOnce`), else in this one. */
  claimOnce(key: string, ttlMs: number): Promise<boolean>;
  /**
   * A job context for a job this process does not run itself: the one a
   * dispatched route request gets as `req.backjob`. `onEnd` runs when the
   * context finishes or fails the job (the route ends its response there).
   */
  contextFor(id: string, options: { signal: AbortSignal; onEnd?: () => void }): Promise<JobContext>;
}

// Here, with the types every entry exports, so an app that imports `backjob` sees `req.backjob` too.
declare global {
  namespace Express {
    interface Request {
      /** The job this request runs, when BackJob dispatched it (a valid, fresh, unused signature); absent otherwise. */
      backjob?: JobContext;
    }
  }
}
