/**
 * The shim's core: the only writer of job state. It creates jobs, runs them
 * (in-process handlers, or route dispatch), turns every report into an event,
 * writes events of all jobs in one group commit per tick, and tells the bus
 * and the app's listeners only once a write is durable.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server } from 'node:http';
import { hostname } from 'node:os';
import type { Request, Router } from 'express';
import { nanoid } from 'nanoid';
import { JOB_STATUSES, isEnded } from '../../shared/protocol.js';
import { sqlite } from '../backends/local/sqlite.js';
import { JobContextImpl, type ContextHost } from './context.js';
import { Dispatch } from '../dispatch/dispatch.js';
import { dispatchMiddleware } from '../dispatch/express.js';
import { clientAddress } from '../access/client-address.js';
import { BackjobError } from '../errors.js';
import { attachHub } from '../live/hub.js';
import { checkTimeoutSeconds, resolveOptions } from './options.js';
import { describeValue, invalidOption } from '../validate.js';
import { originAllowed, resolveOriginPolicy, type OriginPolicy, type TrustProxy } from '../access/origin.js';
import { createRouter } from '../http/router.js';
import { ReplayGuard } from '../access/signing.js';
import { settlesWithin } from './settle.js';
import { WORKER_LOST } from './records.js';
import type {
  Access,
  AppendResult,
  AttachOptions,
  Backend,
  BackJob,
  BackJobEvents,
  BackJobOptions,
  BusNotice,
  DefineOptions,
  Definition,
  Handover,
  Hub,
  JobContext,
  JobEvent,
  JobEventData,
  JobHandler,
  JobRecord,
  JobSpec,
  JobStatus,
  ListFilter,
  NewJob,
  ResolvedOptions,
  RouteTarget,
  RunOutcome,
  StartOptions,
  StartResult,
} from '../types.js';

/** How long `close()` lets handlers react to their aborted signal before recording them as interrupted. */
const SHUTDOWN_GRACE_MS = 3_000;
/** What is still to be written at close() gets this long: a store that does not answer (Redis down) must not hold close() forever. */
const CLOSE_WRITE_GRACE_MS = 5_000;
const DAY_MS = 86_400_000;
/** Retention sweeps run this often at most, and at least hourly. */
const SWEEP_MIN_MS = 1_000;
const SWEEP_MAX_MS = 3_600_000;
/** Backoff of a store write that failed: a job's end (see `writeEnd`) or its start (see `startLater`). */
const WRITE_RETRY_MIN_MS = 100;
const WRITE_RETRY_MAX_MS = 5_000;
/** How long a recovered job waits for the app to define its handler (see `definitionOf`). */
const DEFINE_GRACE_MS = 10_000;

type EndEventData = Extract<JobEventData, { type: 'job:completed' | 'job:failed' | 'job:canceled' }>;

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** JSON with object keys sorted, so equal values always hash the same. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function mergeKeyOf(parts: unknown[]): string {
  return createHash('sha256').update(canonicalJson(parts)).digest('base64url');
}

/** A job this process is running right now. */
interface Run {
  job: JobRecord;
  controller: AbortController;
  context: JobContextImpl;
  /** Resolves when the job's end is durable (`done`), or the run was left for a retry at shutdown (`later`). */
  ended: Deferred<RunOutcome>;
  timers: NodeJS.Timeout[];
  stall: NodeJS.Timeout | null;
}

/** A pending group commit: events per job, in the order they were reported. */
interface Batch {
  entries: Map<string, { events: JobEventData[]; runner?: string | null }>;
  done: Deferred<Map<string, AppendResult>>;
}

/**
 * The BackJob shim (see {@link BackJob} for the API). Create it with
 * {@link createBackJob}.
 *
 * Events from every job go into one batch that is written with a single
 * `store.append` per tick; while one write is in flight the next batch
 * fills, so a flood of `update()` calls costs a few transactions, not one
 * each. Only after a batch is durable does the shim publish it on the bus and
 * emit `job:*` events, so nobody hears of an end that could still be lost.
 *
 * Typed events fire in the process that wrote the event (the one running the
 * job); the bus tells the other processes.
 */
// A plain EventEmitter, typed by the overrides of `on`, `off` and `once` below: the published types
// then compile against any @types/node an app has (newer ones type EventEmitter<T> incompatibly).
export class BackJobServer extends EventEmitter implements BackJob, ContextHost {
  readonly options: ResolvedOptions;
  readonly backend: Backend;
  readonly ready: Promise<void>;

  /** Identifies this process in `JobRecord.runner`. */
  private readonly runnerId = `${hostname()}:${process.pid}:${nanoid(8)}`;
  private readonly definitions = new Map<string, Definition>();
  /** Runs of recovered jobs waiting for their handler's `define()` (see `definitionOf`). */
  private readonly awaitingDefinition = new Map<string, Set<() => void>>();
  private readonly identifyRequest: BackJobOptions['identify'];
  private readonly configuredKey: string | undefined;
  private readonly originPolicy: OriginPolicy;
  /** The `trust proxy` of the Express app the router serves, for upgrades (see `learnTrustProxy`). */
  private appTrustProxy: TrustProxy | null = null;
  /** Claims of this process, for backends that cannot claim across processes (memory, SQLite: one process anyway). */
  private readonly claims = new ReplayGuard();
  private hmacKey: Buffer | null = null;
  private readonly runs = new Map<string, Run>();
  /** Every live context per job, so an end from anywhere silences all of them. */
  private readonly contexts = new Map<string, Set<JobContextImpl>>();
  private readonly hubs = new Set<Hub>();
  /** Route jobs: their calls out, the calls coming in, and the app's base URL. */
  private readonly dispatch: Dispatch;
  private batch: Batch | null = null;
  private flushing: Promise<void> | null = null;
  private flushScheduled = false;
  private sweepTimer: NodeJS.Timeout | null = null;
  private unsubscribeBus: (() => void) | null = null;
  private closing: Promise<void> | null = null;

  constructor(options: BackJobOptions = {}) {
    super();
    this.options = resolveOptions(options);
    this.backend = options.backend ?? sqlite();
    this.identifyRequest = options.identify;
    this.configuredKey = options.key;
    this.originPolicy = resolveOriginPolicy(options.allowedOrigins, options.trustProxy);
    this.dispatch = new Dispatch(this);
    this.ready = this.init();
    // Callers that await `ready` still see the rejection; this only keeps it from going unhandled.
    this.ready.catch((error) => this.reportError(error));
  }

  // ───────────────────────────── public API ─────────────────────────────

  define<P = any>(name: string, handler: JobHandler<P>, options: DefineOptions = {}): this {
    if (typeof name !== 'string' || !/^[^\s\u0000-\u001f]{1,200}$/.test(name)) {
      throw invalidOption('name', 'a job name of 1 to 200 characters without spaces', name);
    }
    if (typeof handler !== 'function') throw invalidOption('handler', 'a function (job, params) => result', handler);
    if (this.definitions.has(name)) throw new BackjobError('BACKJOB_ERR_INVALID', `A job named "${name}" is already defined`);
    const { launchable, title, retries, timeout, errorTimeout } = options;
    if (launchable !== undefined && typeof launchable !== 'boolean') throw invalidOption('launchable', 'a boolean', launchable);
    if (title !== undefined && !(typeof title === 'string' && title.trim().length > 0 && title.length <= 200)) {
      throw invalidOption('title', 'a non-empty string of at most 200 characters', title);
    }
    if (retries !== undefined && !(Number.isSafeInteger(retries) && retries >= 0)) {
      throw invalidOption('retries', 'a non-negative integer', retries);
    }
    if (timeout !== undefined) checkTimeoutSeconds('timeout', timeout);
    if (errorTimeout !== undefined) checkTimeoutSeconds('errorTimeout', errorTimeout);
    this.definitions.set(name, { name, handler, options: { ...options } });
    for (const resolve of this.awaitingDefinition.get(name) ?? []) resolve();
    this.awaitingDefinition.delete(name);
    return this;
  }

  async start(spec: JobSpec, options: StartOptions = {}): Promise<StartResult> {
    await this.ready;
    if (this.closing) throw new BackjobError('BACKJOB_ERR_CLOSED', 'BackJob is closing: no new jobs');
    if (typeof spec !== 'object' || spec === null) throw invalidOption('spec', '{ name, params } or { route, … }', spec);
    const { as } = options;
    if (as !== undefined && as !== 'anonymous' && !(typeof as === 'object' && as !== null && typeof as.headers === 'object')) {
      throw invalidOption('as', 'the starting request or "anonymous"', as);
    }
    const delay = options.delay ?? 0;
    if (!(typeof delay === 'number' && Number.isFinite(delay) && delay >= 0)) throw invalidOption('delay', 'a non-negative number of seconds', delay);
    const merge = options.merge ?? this.options.merge;
    if (typeof merge !== 'boolean') throw invalidOption('merge', 'a boolean', merge);
    const quota = options.quota ?? true;
    if (typeof quota !== 'boolean') throw invalidOption('quota', 'a boolean', quota);
    const req = as === 'anonymous' ? undefined : as;
    const owner = req ? await this.identify(req) : null;
    // Starts without a request (the app's own) share one turn in the queue and have no quota.
    const queueKey = !req ? 'app' : owner !== null ? `user:${owner}` : `addr:${this.addressKey(clientAddress(req))}`;
    const maxWaiting = req && quota ? this.options.maxWaitingPerOwner : 0;
    const now = Date.now();
    const common = { id: nanoid(), owner, queueKey, runAt: now + delay * 1000, runner: null, createdAt: now };

    let job: NewJob;
    if ('name' in spec && spec.name !== undefined) {
      const definition = this.definitions.get(spec.name);
      if (!definition) {
        throw new BackjobError('BACKJOB_ERR_UNKNOWN_JOB', `Unknown job ${describeValue(spec.name)}: define it with backjob.define()`);
      }
      try {
        JSON.stringify(spec.params);
      } catch (error) {
        throw new BackjobError('BACKJOB_ERR_INVALID', `Expected \`params\` to be JSON-serializable (${(error as Error).message})`);
      }
      const { retries = 0, timeout = this.options.timeout, errorTimeout = this.options.errorTimeout } = definition.options;
      job = {
        ...common,
        name: spec.name,
        ...(definition.options.title === undefined ? {} : { title: definition.options.title }),
        kind: 'handler',
        params: spec.params,
        mergeKey: merge ? mergeKeyOf(['handler', spec.name, spec.params ?? null, owner]) : null,
        retriesLeft: retries,
        timeoutMs: timeout * 1000,
        errorTimeout,
      };
    } else if ('route' in spec && spec.route !== undefined) {
      const target: RouteTarget = { method: spec.method ?? 'GET', path: spec.route };
      if (spec.query !== undefined) target.query = spec.query;
      if (spec.body !== undefined) target.body = spec.body;
      if (spec.bodyType !== undefined) target.bodyType = spec.bodyType;
      const { route, credentials, credentialsDigest } = this.dispatch.prepare(target, req);
      job = {
        ...common,
        name: `${route.method} ${route.path}`,
        kind: 'route',
        route,
        mergeKey: merge ? mergeKeyOf(['route', route, owner, credentialsDigest ?? null]) : null,
        retriesLeft: 0,
        timeoutMs: this.options.timeout * 1000,
        errorTimeout: this.options.errorTimeout,
        ...(credentials === undefined ? {} : { credentials }),
      };
    } else {
      throw invalidOption('spec', '{ name, params } or { route, … }', spec);
    }

    const created = await this.backend.store.create(job, { maxWaiting });
    if (!created.merged) await this.backend.queue.enqueue(created.job);
    return { id: created.job.id, token: this.tokenFor(created.job.id), merged: created.merged };
  }

  async status(id: string): Promise<JobRecord | null> {
    await this.ready;
    return this.backend.store.get(id);
  }

  /**
   * Cancels a waiting or running job. The canceling process records the
   * `job:canceled` end itself (the store keeps it atomic against a concurrent
   * finish), so the cancel is durable when this resolves and works even when
   * the process that ran the job is gone. Whoever runs the job hears the end
   * through the bus and aborts its signal.
   */
  async cancel(id: string, reason = 'canceled'): Promise<boolean> {
    await this.ready;
    const job = await this.backend.store.get(id);
    if (!job || isEnded(job.status)) return false;
    if (job.status === 'waiting') await this.backend.queue.remove(id);
    const result = (await this.end(id, { type: 'job:canceled', reason })).get(id);
    // Another end may have been written first (the handler finishing in the same write): then this one was dropped.
    return result?.events.some((event) => event.type === 'job:canceled') ?? false;
  }

  async list(filter: ListFilter = {}): Promise<JobRecord[]> {
    await this.ready;
    const { owner, status, limit } = filter;
    if (owner !== undefined && owner !== null && typeof owner !== 'string') throw invalidOption('owner', 'a principal (string) or null', owner);
    if (status !== undefined && ![status].flat().every((s) => JOB_STATUSES.includes(s))) {
      throw invalidOption('status', `one or more of ${JOB_STATUSES.join(', ')}`, status);
    }
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) throw invalidOption('limit', 'a positive integer', limit);
    return this.backend.store.list(filter);
  }

  override on<E extends keyof BackJobEvents>(event: E, listener: (...args: BackJobEvents[E]) => void): this {
    return super.on(event as never, listener as never);
  }

  override off<E extends keyof BackJobEvents>(event: E, listener: (...args: BackJobEvents[E]) => void): this {
    return super.off(event as never, listener as never);
  }

  override once<E extends keyof BackJobEvents>(event: E, listener: (...args: BackJobEvents[E]) => void): this {
    return super.once(event as never, listener as never);
  }

  router(): Router {
    return createRouter(this, dispatchMiddleware(this.dispatch));
  }

  attach(server: Server, options?: AttachOptions): Hub {
    const hub = attachHub(this, server, options);
    this.hubs.add(hub);
    this.dispatch.address.learnFromServer(server);
    return hub;
  }

  /**
   * Stops taking work, aborts every running job's signal with a
   * `BACKJOB_ERR_SHUTDOWN` reason ("shutdown"), gives handlers a short grace
   * to end, then closes the hubs and the backend.
   *
   * A job that ends on its own during the grace keeps that end (a handler
   * that finishes anyway completes). A job that is interrupted (its handler
   * threw after the abort, or did not end in time) is left `running` for the
   * next start-up to re-run when it has retries left; otherwise it is failed
   * "interrupted: shutdown" (`BACKJOB_ERR_INTERRUPTED`) before `close`
   * resolves, so watchers learn at once instead of at the next start.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  async identify(req: IncomingMessage): Promise<string | null> {
    if (!this.identifyRequest) return null;
    // An Express request, except a live-channel upgrade without a ticket: see `BackJobOptions.identify`.
    const principal: unknown = await this.identifyRequest(req as Request);
    if (typeof principal === 'string') return principal === '' ? null : principal;
    // Session ids are often numbers: read as "nobody", every user's jobs would merge and share tokens.
    if ((typeof principal === 'number' && Number.isFinite(principal)) || typeof principal === 'bigint') return String(principal);
    if (principal === null || principal === undefined || principal === false) return null;
    // The type only: the value (a whole user object, say) may hold what the caller must not see.
    const type = Array.isArray(principal) ? 'array' : typeof principal;
    throw new BackjobError('BACKJOB_ERR_IDENTIFY', `Expected \`identify\` to return a user id (string or number) or null, got a value of type ${type}`, {
      status: 500,
    });
  }

  async authorize(id: string, access: Access): Promise<JobRecord | null> {
    await this.ready;
    const job = await this.backend.store.get(id);
    if (!job) return null;
    if (typeof access.token === 'string' && this.tokenMatches(id, access.token)) return job;
    if (job.owner !== null && typeof access.principal === 'string' && access.principal === job.owner) return job;
    return null;
  }

  /**
   * What an anonymous client's address is stored as: a keyed digest, enough to
   * tell addresses apart for the quota and the queue's turns, without keeping
   * visitors' addresses in the store for as long as their jobs are kept.
   */
  private addressKey(address: string): string {
    return createHmac('sha256', this.key()).update(`address:${address}`).digest('base64url').slice(0, 22);
  }

  tokenFor(id: string): string {
    return createHmac('sha256', this.key()).update(`watch:${id}`).digest('base64url');
  }

  definition(name: string): Definition | undefined {
    return this.definitions.get(name);
  }

  isLaunchableRoute(path: string): boolean {
    // URL parsing silently drops tabs and newlines and trims trailing spaces, so `/reports/\t../admin` would
    // pass every check below and still be sent as `/admin`. A path a browser sends never contains them raw.
    if (typeof path !== 'string' || !path.startsWith('/') || /[\u0000-\u0020\u007f]/.test(path)) return false;
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return false;
    }
    // A prefix rule must not be escaped with dot segments or odd separators: `/reports/../admin`.
    if (/[?#\\]|\/\.\.?(\/|$)|\/\//.test(decoded)) return false;
    return this.options.routes.some((rule) => (rule.endsWith('*') ? path.startsWith(rule.slice(0, -1)) : path === rule));
  }

  originAllowed(origin: string, req: IncomingMessage): boolean {
    return originAllowed(origin, req, this.originPolicy, this.appTrustProxy);
  }

  learnTrustProxy(trust: TrustProxy | undefined): void {
    if (typeof trust === 'function') this.appTrustProxy = trust;
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    return this.backend.claimOnce ? this.backend.claimOnce(key, ttlMs) : this.claims.claimOnce(key, ttlMs);
  }

  key(): Buffer {
    if (!this.hmacKey) throw new BackjobError('BACKJOB_ERR_NOT_READY', 'BackJob is not ready yet: await backjob.ready');
    return this.hmacKey;
  }

  async contextFor(id: string, options: { signal: AbortSignal; onEnd?: () => void }): Promise<JobContext> {
    await this.ready;
    const job = await this.backend.store.get(id);
    if (!job) throw new BackjobError('BACKJOB_ERR_NOT_FOUND', `No job ${describeValue(id)}`);
    if (isEnded(job.status)) throw new BackjobError('BACKJOB_ERR_ENDED', `Job ${id} already ${job.status}`);
    const context = this.newContext(job, options.signal, options.onEnd);
    // An end that became durable during the read passed this context by, and it would wait for one forever
    // (holding the route's request and response): look again now that it is registered to hear of ends.
    const now = await this.backend.store.get(id);
    if (!now || isEnded(now.status)) {
      context.markEnded();
      this.forgetContext(context);
      throw new BackjobError('BACKJOB_ERR_ENDED', `Job ${id} already ${now?.status ?? 'ended'}`);
    }
    return context;
  }

  // ───────────────────────────── group commit ─────────────────────────────

  /** Queues events for the next group commit ({@link ContextHost.write}); for job contexts. */
  write(jobId: string, events: JobEventData[], runner?: string | null): Promise<Map<string, AppendResult>> {
    if (!this.batch) {
      const done = deferred<Map<string, AppendResult>>();
      done.promise.catch(() => {}); // reported once through `error`; writers that care await it
      this.batch = { entries: new Map(), done };
    }
    let entry = this.batch.entries.get(jobId);
    if (!entry) this.batch.entries.set(jobId, (entry = { events: [] }));
    for (const event of events) {
      const last = entry.events.at(-1);
      if (event.type === 'job:progress' && last?.type === 'job:progress') {
        // Progress is latest-wins: one still waiting to be written is overtaken by the next, which
        // carries both values. A flood then costs the store (and every watcher) a row per write, not per call.
        const progress = event.progress !== undefined ? event.progress : last.progress;
        const text = event.text !== undefined ? event.text : last.text;
        entry.events[entry.events.length - 1] = {
          type: 'job:progress',
          ...(progress !== undefined ? { progress } : {}),
          ...(text !== undefined ? { text } : {}),
        };
      } else {
        entry.events.push(event);
      }
    }
    if (runner !== undefined) entry.runner = runner;
    this.scheduleFlush();
    return this.batch.done.promise;
  }

  /** Queues a job's end, silencing every context of the job at once ({@link ContextHost.end}); for job contexts. */
  end(jobId: string, event: EndEventData): Promise<Map<string, AppendResult>> {
    for (const context of this.contexts.get(jobId) ?? []) context.markEnded();
    return this.writeEnd(jobId, event);
  }

  /**
   * An end must reach the store: until it does, the job reads `running` and its
   * run holds a concurrency slot. A failed write (Redis restarting, a full disk)
   * is retried with backoff, each failure reported through `error`, until it is
   * stored or the shim closes; a job still unended then is recovered as
   * interrupted at the next start-up.
   */
  private async writeEnd(jobId: string, event: EndEventData): Promise<Map<string, AppendResult>> {
    for (let delay = WRITE_RETRY_MIN_MS; ; delay = Math.min(2 * delay, WRITE_RETRY_MAX_MS)) {
      try {
        return await this.write(jobId, [event]);
      } catch (error) {
        if (this.closing) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flushBatch();
    });
  }

  private flushBatch(): void {
    const batch = this.batch;
    if (!batch || this.flushing) return;
    this.batch = null;
    const entries = [...batch.entries].map(([jobId, entry]) => ({ jobId, ...entry }));
    this.flushing = (async () => {
      let results: AppendResult[];
      try {
        results = await this.backend.store.append(entries);
      } catch (error) {
        this.reportError(error);
        batch.done.reject(error);
        return;
      }
      const byJob = new Map<string, AppendResult>();
      entries.forEach((entry, i) => byJob.set(entry.jobId, results[i]!));
      for (const result of results) this.afterStored(result);
      batch.done.resolve(byJob);
    })().finally(() => {
      this.flushing = null;
      // Whatever arrived during the write goes out now, as one batch.
      if (this.batch) this.flushBatch();
    });
  }

  /** Resolves once everything reported so far is durable (or failed). */
  private async drain(): Promise<void> {
    while (this.batch || this.flushing) {
      if (!this.flushing) this.flushBatch();
      await this.flushing?.catch(() => {});
    }
  }

  /** Tells the bus and the app about events that are now durable. */
  private afterStored({ events, job }: AppendResult): void {
    if (!job || events.length === 0) return;
    const run = this.runs.get(job.id);
    if (isEnded(job.status)) this.jobEnded(job, events.at(-1)!);
    else run?.stall?.refresh();
    this.backend.bus.publish({ type: 'events', jobId: job.id, events }).catch((error) => this.reportError(error));
    for (const event of events) {
      if (event.type !== 'job:created') this.emitSafely(event.type, job, event);
    }
  }

  // ───────────────────────────── running jobs ─────────────────────────────

  private async init(): Promise<void> {
    const { store, bus, queue } = this.backend;
    this.hmacKey = Buffer.from(this.configuredKey ?? (await store.secret()));
    this.unsubscribeBus = bus.subscribe((message) => this.onBus(message));
    if (this.options.worker) {
      // A restart picks up what was waiting, and settles what a dead process left running.
      for (const job of await store.list({ status: 'waiting' })) await queue.enqueue(job);
      for (const job of await this.backend.orphans()) {
        if (job.retriesLeft > 0) await queue.enqueue(job);
        else await this.end(job.id, { type: 'job:failed', reason: 'interrupted', code: 'BACKJOB_ERR_INTERRUPTED' });
      }
      queue.process(
        (jobId, handover) =>
          this.runJob(jobId, handover).catch((error: unknown) => {
            this.startLater(jobId, error);
            return 'done' as const; // out of the queue: startLater hands it back once the store answers
          }),
        this.options.concurrency,
      );
    }
    await this.sweep();
    const periods = [this.options.backlogDays, this.options.allBacklogDays].filter((d) => d > 0).map((d) => (d * DAY_MS) / 2);
    if (periods.length) {
      const every = Math.min(SWEEP_MAX_MS, Math.max(SWEEP_MIN_MS, ...[Math.min(...periods)]));
      this.sweepTimer = setInterval(() => void this.sweep(), every);
      this.sweepTimer.unref();
    }
  }

  /** Deletes ended jobs past retention. Waiting and running jobs are never touched (the store guarantees it). */
  private async sweep(): Promise<void> {
    const now = Date.now();
    const { backlogDays, allBacklogDays } = this.options;
    if (!backlogDays && !allBacklogDays) return;
    try {
      await this.backend.store.deleteEnded({
        ...(backlogDays ? { completedBefore: now - backlogDays * DAY_MS } : {}),
        ...(allBacklogDays ? { endedBefore: now - allBacklogDays * DAY_MS } : {}),
      });
    } catch (error) {
      this.reportError(error);
    }
  }

  private onBus(message: BusNotice): void {
    // After a resync the bus catches up the jobs running here by itself: their events go through it.
    if (message.type !== 'events') return;
    const run = this.runs.get(message.jobId);
    // Any event, from any process, proves the job is alive.
    if (run?.stall) run.stall.refresh();
    const last = message.events.at(-1);
    if (last && (last.type === 'job:completed' || last.type === 'job:failed' || last.type === 'job:canceled')) {
      // An end written by another process (a cancel there, a dispatched route's context).
      if (run || this.contexts.has(message.jobId)) {
        this.backend.store
          .get(message.jobId)
          .then((job) => job && isEnded(job.status) && this.jobEnded(job, last))
          .catch((error) => this.reportError(error));
      }
    }
  }

  private newContext(job: JobRecord, signal: AbortSignal, onEnd?: () => void): JobContextImpl {
    let set = this.contexts.get(job.id);
    if (!set) this.contexts.set(job.id, (set = new Set()));
    // Contexts of one job share its log count, so a route and its runner keep to one bound together.
    const sibling: JobContextImpl | undefined = set.values().next().value;
    const context = new JobContextImpl(this, job, signal, onEnd, sibling?.logCount);
    set.add(context);
    return context;
  }

  /**
   * A job's definition. Jobs recovered at start-up are queued as soon as the
   * store is open, which can be before the app's `define()` calls (job modules
   * loaded with a dynamic import): an unknown name gets a grace period before
   * the job fails as unknown.
   */
  private async definitionOf(name: string): Promise<Definition | undefined> {
    if (this.definitions.has(name) || this.closing) return this.definitions.get(name);
    let waiter!: () => void;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      waiter = resolve;
      timer = setTimeout(resolve, DEFINE_GRACE_MS).unref();
      let waiters = this.awaitingDefinition.get(name);
      if (!waiters) this.awaitingDefinition.set(name, (waiters = new Set()));
      waiters.add(waiter);
    });
    clearTimeout(timer);
    this.awaitingDefinition.get(name)?.delete(waiter);
    return this.definitions.get(name);
  }

  /** The queue's processor: runs one job to its end. Resolves once the end is durable (see {@link RunOutcome}). */
  private async runJob(jobId: string, handover: Handover): Promise<RunOutcome> {
    if (this.closing) return 'later';
    // Handed out again while this process still runs it (BullMQ saw its lock lapse): hold it until
    // the run ends, so the queue keeps the job, rather than letting it go while the work goes on.
    const current = this.runs.get(jobId);
    if (current) return current.ended.promise;
    const job = await this.backend.store.get(jobId);
    if (!job || isEnded(job.status)) return 'done';
    // Running already: its process died (recovery, or a queue that noticed a lost worker).
    if (job.status === 'running' && job.retriesLeft <= 0) {
      const failure = handover.lost ? { reason: 'worker lost', code: WORKER_LOST } : { reason: 'interrupted', code: 'BACKJOB_ERR_INTERRUPTED' };
      await this.end(jobId, { type: 'job:failed', ...failure });
      return 'done';
    }
    const definition = job.kind === 'handler' ? await this.definitionOf(job.name) : undefined;
    if (this.closing) return 'later'; // closed while waiting for the definition: the job is untouched
    if (job.kind === 'handler' && !definition) {
      await this.end(jobId, {
        type: 'job:failed',
        reason: `Unknown job "${job.name}": no handler is defined for it in this process`,
        code: 'BACKJOB_ERR_UNKNOWN_JOB',
      });
      return 'done';
    }

    const controller = new AbortController();
    const run: Run = {
      job,
      controller,
      context: this.newContext(job, controller.signal),
      ended: deferred<RunOutcome>(),
      timers: [],
      stall: null,
    };
    // Registered before the start is written, so an end that races the start still finds the run.
    this.runs.set(jobId, run);
    let started: AppendResult | undefined;
    try {
      started = (await this.write(jobId, [{ type: 'job:start', attempt: job.attempt + 1 }], this.runnerId)).get(jobId);
    } catch (error) {
      // Not started: release the run, so the job (still waiting in the store) is not held here forever.
      this.forgetRun(run);
      throw error;
    }
    if (!started?.job || started.events.length === 0) {
      // Ended before it could start (canceled meanwhile).
      this.forgetRun(run);
      return 'done';
    }
    if (!this.runs.has(jobId)) return 'done'; // ended in the same batch as its start
    run.job = started.job;
    if (job.timeoutMs > 0) {
      const seconds = job.timeoutMs / 1000;
      run.timers.push(setTimeout(() => this.stop(run, 'BACKJOB_ERR_TIMEOUT', `timed out after ${seconds} s`), job.timeoutMs));
    }
    if (job.errorTimeout > 0) {
      const seconds = job.errorTimeout;
      run.stall = setTimeout(() => this.stop(run, 'BACKJOB_ERR_STALLED', `stalled: no progress for ${seconds} s`), seconds * 1000);
      run.timers.push(run.stall);
    }
    for (const timer of run.timers) timer.unref();

    const context = run.context;
    Promise.resolve()
      .then(() => {
        // Shut down while the start was being written: never begin the work at all.
        if (run.controller.signal.aborted) throw run.controller.signal.reason;
      })
      .then(() => (definition ? definition.handler(context, started.job!.params) : this.dispatch.run(started.job!, context)))
      .then((value) => context.finish(value))
      .catch((error: unknown) => this.handlerFailed(run, error))
      .catch((error: unknown) => this.reportError(error));
    return run.ended.promise;
  }

  /**
   * A job whose start could not be read or written (the store failing) is
   * still waiting in the store, and no longer in the queue: it is handed to the
   * queue again after a backoff, each failure reported through `error`, rather
   * than left until the next start-up.
   */
  private startLater(jobId: string, error: unknown, delay = WRITE_RETRY_MIN_MS): void {
    this.reportError(error);
    if (this.closing) return; // the next start-up picks it up
    setTimeout(() => {
      if (this.closing) return;
      this.backend.store
        .get(jobId)
        .then((job) => (job && !isEnded(job.status) ? this.backend.queue.enqueue(job) : undefined))
        .catch((again: unknown) => this.startLater(jobId, again, Math.min(2 * delay, WRITE_RETRY_MAX_MS)));
    }, delay).unref();
  }

  private async handlerFailed(run: Run, error: unknown): Promise<void> {
    if (run.context.ended) return;
    if (this.closing && run.controller.signal.aborted) return this.interrupt(run);
    await run.context.fail(error instanceof Error ? error : new Error(String(error)));
  }

  /** Ends a run from outside its handler (stall, timeout): record the failure, then abort the handler. */
  private stop(run: Run, code: 'BACKJOB_ERR_STALLED' | 'BACKJOB_ERR_TIMEOUT', reason: string): void {
    if (run.context.ended) return;
    this.end(run.job.id, { type: 'job:failed', reason, code }).catch((error) => this.reportError(error));
    run.controller.abort(new BackjobError(code, reason));
  }

  /** A job ended (durably), however it happened: silence its contexts and release its run. */
  private jobEnded(job: JobRecord, event: JobEvent): void {
    for (const context of this.contexts.get(job.id) ?? []) context.markEnded();
    this.contexts.delete(job.id);
    const run = this.runs.get(job.id);
    if (!run) return;
    // The handler may still be working: tell it, unless it ended the job itself.
    if (!run.controller.signal.aborted && !run.context.endedHere && event.type !== 'job:completed') {
      const code = event.type === 'job:canceled' ? 'BACKJOB_ERR_CANCELED' : event.type === 'job:failed' && event.code ? event.code : 'BACKJOB_ERR_ENDED';
      const reason = event.type === 'job:canceled' || event.type === 'job:failed' ? event.reason : job.status;
      run.controller.abort(new BackjobError(code as 'BACKJOB_ERR_CANCELED', reason));
    }
    this.forgetRun(run);
  }

  private forgetRun(run: Run, outcome: RunOutcome = 'done'): void {
    for (const timer of run.timers) clearTimeout(timer);
    if (this.runs.get(run.job.id) === run) this.runs.delete(run.job.id);
    this.forgetContext(run.context);
    run.ended.resolve(outcome);
  }

  private forgetContext(context: JobContextImpl): void {
    const set = this.contexts.get(context.id);
    set?.delete(context);
    if (set?.size === 0) this.contexts.delete(context.id);
  }

  /** A run cut short by shutdown: left for the next start-up if it may retry, else failed now. */
  private async interrupt(run: Run): Promise<void> {
    if (run.context.ended) return;
    if (run.job.retriesLeft > 0) {
      run.context.markEnded();
      this.forgetRun(run, 'later');
      return;
    }
    await this.end(run.job.id, { type: 'job:failed', reason: 'interrupted: shutdown', code: 'BACKJOB_ERR_INTERRUPTED' });
  }

  private async shutdown(): Promise<void> {
    // After `ready`: a close that comes before the start-up finished must still stop the timer it sets.
    await this.ready.catch(() => {});
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    // Jobs waiting for a late define() stop waiting (and, seeing `closing`, leave the job as it is).
    for (const waiters of this.awaitingDefinition.values()) for (const wake of waiters) wake();
    const runs = [...this.runs.values()];
    const reason = new BackjobError('BACKJOB_ERR_SHUTDOWN', 'shutdown');
    for (const run of runs) run.controller.abort(reason);
    await settlesWithin(Promise.all(runs.map((run) => run.ended.promise)), SHUTDOWN_GRACE_MS);
    const settled = (async () => {
      await Promise.all([...this.runs.values()].map((run) => this.interrupt(run)));
      await this.drain();
    })();
    if (!(await settlesWithin(settled, CLOSE_WRITE_GRACE_MS))) {
      const seconds = CLOSE_WRITE_GRACE_MS / 1000;
      this.reportError(new BackjobError('BACKJOB_ERR_SHUTDOWN', `The store did not answer within ${seconds} s of close(): what was not yet written (never acknowledged) is dropped`));
    }
    for (const hub of this.hubs) await hub.close().catch((error) => this.reportError(error));
    this.unsubscribeBus?.();
    await this.backend.close();
  }

  // ───────────────────────────── events ─────────────────────────────

  /** Calls each listener on its own, so one that throws (or rejects) cannot break the others or the shim. */
  private emitSafely<E extends keyof BackJobEvents>(name: E, ...args: BackJobEvents[E]): void {
    for (const listener of this.rawListeners(name as never) as Array<(...a: unknown[]) => unknown>) {
      try {
        const returned = listener.apply(this, args);
        if (returned && typeof (returned as Promise<unknown>).then === 'function') {
          (returned as Promise<unknown>).then(undefined, (error) => this.reportError(error));
        }
      } catch (error) {
        this.reportError(error);
      }
    }
  }

  /** Hands an error the shim survived to `error` listeners, or to a process warning when there are none. */
  private reportError(error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    const listeners = this.rawListeners('error' as never) as Array<(e: Error) => unknown>;
    if (listeners.length === 0) {
      process.emitWarning(err);
      return;
    }
    for (const listener of listeners) {
      try {
        listener.call(this, err);
      } catch {
        // An error listener that throws has nowhere left to report to.
      }
    }
  }

  private tokenMatches(id: string, token: string): boolean {
    // Compare digests: equal length always, and timing says nothing about the token.
    const a = createHash('sha256').update(token).digest();
    const b = createHash('sha256').update(this.tokenFor(id)).digest();
    return timingSafeEqual(a, b);
  }
}

/**
 * Creates the BackJob shim. Throws a `BackjobError` (`BACKJOB_ERR_INVALID`)
 * for an invalid option.
 *
 * @example
 * const backjob = createBackJob({ identify: (req) => req.session?.user });
 * backjob.define('reports/build', async (job, params) => { job.update(50); return { rows: 10 }; });
 * app.use(backjob.router());
 * backjob.attach(server);
 */
export function createBackJob(options: BackJobOptions = {}): BackJobServer {
  return new BackJobServer(options);
}
