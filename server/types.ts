/**
 * The server's public types: the job context handlers see, the options of
 * every entry, and the shim's API. The backend contracts are in
 * server/contracts.ts, the internal seam of the doors in server/host.ts;
 * both are re-exported here so that one import serves every part.
 */
import type { IncomingMessage } from 'node:http';
import type { Request } from 'express';
import type { JobEvent, JobStatus, StepDeclaration, StepState } from '../shared/protocol.js';
import type { Backend, JobRecord, ListFilter, RouteTarget } from './contracts.js';

export type { ChildSnapshot, JobEvent, JobEventData, JobSnapshot, JobStatus, StepDeclaration, StepSnapshot, StepState } from '../shared/protocol.js';
export type * from './contracts.js';

/** What a handler or a dispatched route gets to report on its job. */
export interface JobContext {
  readonly id: string;
  /** The job's params: this run's own copy (the handler's second argument is the same object), free to change. */
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
  /**
   * Declares the job's named steps, in order (a later call replaces them):
   * names, or `{ name, title?, weight? }` (weight: its share of the progress,
   * default 1). From then on the job's progress is derived from its steps. At
   * most 100 steps, names and titles at most 200 characters, names unique.
   */
  steps(steps: Array<string | StepDeclaration>): void;
  /**
   * Moves a declared step: `state` (default `running`; a step that starts
   * running completes the earlier ones still open), its own progress 0–100,
   * its status text. Latest wins within a write, like `update()`. Throws
   * `BACKJOB_ERR_INVALID` for a step that was not declared.
   */
  step(name: string, change?: { progress?: number | null; text?: string; state?: StepState }): void;
  /**
   * Starts a child job: an ordinary job of its own (own log and progress,
   * this job's owner and queue turn, run by any worker) whose progress counts
   * in this job's, weighted by `weight`. Resolves once it is created. A child
   * that fails fails this job (`BACKJOB_ERR_CHILD_FAILED`) unless it was
   * spawned `optional`, or its `result()` was asked for (then the failure
   * rejects there). Ending this job cancels its children that are still
   * running, and a handler that returns first waits for them. A re-run of this
   * job (after a crash) gets the child its earlier run spawned at the same
   * place instead of a new one.
   */
  spawn(name: string, params?: unknown, options?: SpawnOptions): Promise<ChildJob>;
  spawn(spec: JobSpec, options?: SpawnOptions): Promise<ChildJob>;
  /** The children spawned so far by this run, in order. */
  children(): ChildJob[];
  /** Waits for every child spawned so far, and hands their outcomes (their failures no longer fail this job). */
  waitForChildren(): Promise<ChildOutcome[]>;
}

/** Options of `job.spawn()`. */
export interface SpawnOptions {
  /** Share of the parent's progress (default 1). */
  weight?: number;
  /** What people call the child (default: its definition's title). */
  title?: string;
  /** The child's failure does not fail the parent. Default false. */
  optional?: boolean;
}

/** A job's child, as `spawn()` hands it. */
export interface ChildJob {
  readonly id: string;
  /** The child's result once it completed; rejects (`BACKJOB_ERR_CHILD_FAILED`) when it failed or was canceled. */
  result(): Promise<unknown>;
}

/** How a child ended (`waitForChildren()`), and a batch's result lists its members so. */
export interface ChildOutcome {
  id: string;
  status: Extract<JobStatus, 'completed' | 'failed' | 'canceled'>;
  result?: unknown;
  error?: string;
  errorCode?: string;
}

/** A member of a batch (`start([...])`): a job spec, its share of the batch's progress (default 1) and its title. */
export type BatchMemberSpec = JobSpec & { weight?: number; title?: string };

/** Options of `start([...])`: those of a single start, and what the batch is called. */
export interface BatchStartOptions extends StartOptions {
  /** What the batch is called ("Export 40 files"), at most 200 characters. */
  title?: string;
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

/**
 * Handler signature of the typed server events. A `job:*` listener gets the
 * job as stored with the event and the event itself, as copies of its own:
 * changing them (redacting what it logs, say) changes nothing stored or sent.
 */
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
  /**
   * Whether the upgrade `req` is this hub's to answer (its path is
   * `${basePath}/ws`). An app's own `upgrade` listener that destroys the
   * sockets of paths it does not serve, as in `ws`'s example of several
   * servers on one port, spares these: `else if (!hub.owns(req)) socket.destroy()`.
   */
  owns(req: IncomingMessage): boolean;
  /** Closes every client and stops routing upgrades. */
  close(): Promise<void>;
}

/** The shim: what `createBackJob` returns, the API an app uses. */
export interface BackJob {
  /** Resolves when the store is open, the key loaded and orphaned jobs recovered. */
  readonly ready: Promise<void>;

  define<P = any>(name: string, handler: JobHandler<P>, options?: DefineOptions): this;
  /**
   * Starts a batch: one job (`batch: true`) whose members (at most 1,000) are
   * its children, each run as the job it describes; the batch's progress is
   * their weighted mean. The quota counts the members, concurrency applies to
   * them, and the batch itself holds no slot: it ends when its last member
   * ends, completed (result `{ members: ChildOutcome[] }`) if all completed,
   * else failed or canceled. Canceling it cancels its members.
   */
  start(specs: BatchMemberSpec[], options?: BatchStartOptions): Promise<StartResult>;
  // Last, so that `Parameters<BackJob['start']>` is still the single start's.
  start(spec: JobSpec, options?: StartOptions): Promise<StartResult>;
  status(id: string): Promise<JobRecord | null>;
  /** Cancels a waiting or running job wherever it runs, and its descendants. False if it is unknown or already ended. */
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

declare global {
  namespace Express {
    interface Request {
      /** The job this request runs, when BackJob dispatched it (a valid, fresh, unused signature); absent otherwise. */
      backjob?: JobContext;
    }
  }
}
