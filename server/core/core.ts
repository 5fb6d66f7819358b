/**
 * The core of the shim, transport-neutral: the one internal object the
 * composition root (server/backjob.ts) builds and hands to the doors (HTTP,
 * live channel, dispatch), each of which sees it through the narrow
 * interface of what it needs. It wires the rooms — definitions, job specs,
 * the event writer, the runner, maintenance, access — and owns the job
 * lifecycle calls (start, status, cancel, list) and the order of shutdown.
 * It imports no framework, transport, door or concrete backend.
 */
import type { IncomingMessage } from 'node:http';
import { isEnded } from '../../shared/protocol.js';
import { authorize } from '../access/authorize.js';
import { createClaims, type ClaimOnce } from '../access/claims.js';
import { createIdentify, type Identify } from '../access/identify.js';
import { isLaunchableRoute } from '../access/launch-policy.js';
import { originAllowed, resolveOriginPolicy, type OriginPolicy } from '../access/origin.js';
import { Keys } from '../access/tokens.js';
import { BackjobError } from '../errors.js';
import { Contexts } from './contexts.js';
import { Definitions } from './definitions.js';
import type { BackJobEmitter } from './emitter.js';
import { EventWriter } from './event-writer.js';
import { startBatch } from './batch.js';
import { Families } from './families.js';
import { buildJob, takeSpec, type JobSpecDeps } from './job-spec.js';
import { recoverJobs, RetentionSweep } from './maintenance.js';
import { checkListFilter, resolveOptions } from './options.js';
import { queueKeyOf } from './records.js';
import { Runner } from './runner.js';
import { newRunnerId } from './runner-id.js';
import { settlesWithin } from './settle.js';
import type {
  Access,
  Backend,
  BackJobOptions,
  BatchMemberSpec,
  BatchStartOptions,
  DefineOptions,
  JobContext,
  JobHandler,
  JobRecord,
  JobSpec,
  ListFilter,
  StartOptions,
  StartResult,
  TrustProxy,
} from '../types.js';
import type { BackJobHost, Definition, ResolvedOptions, RouteDoor } from '../host.js';

/** What is still to be written at close() gets this long: a store that does not answer (Redis down) must not hold close() forever. */
const CLOSE_WRITE_GRACE_MS = 5_000;

/** What the composition root plugs into the core. */
export interface CoreWiring {
  /** The backend when the options name none. */
  defaultBackend: () => Backend;
  /** The route door: dispatch of route jobs. */
  routes: RouteDoor;
  /** The app's typed events. */
  events: Pick<BackJobEmitter, 'emitSafely' | 'reportError' | 'listenerCount'>;
}

export class Core implements BackJobHost {
  readonly options: ResolvedOptions;
  readonly backend: Backend;
  /** Resolves when the store is open, the key loaded and orphaned jobs recovered. */
  readonly ready: Promise<void>;

  private readonly keys = new Keys();
  private readonly definitions = new Definitions();
  private readonly writer: EventWriter;
  private readonly contexts: Contexts;
  private readonly families: Families;
  private readonly runner: Runner;
  private readonly sweep: RetentionSweep;
  private readonly specDeps: JobSpecDeps;
  private readonly identifyRequest: Identify;
  private readonly claims: ClaimOnce;
  private readonly originPolicy: OriginPolicy;
  /** The `trust proxy` of the app the router serves, for upgrades (see `learnTrustProxy`). */
  private appTrustProxy: TrustProxy | null = null;
  private unsubscribeBus: (() => void) | null = null;
  private closing = false;
  /** Aborted by `stopWork`: a start-up still waiting for the backend's run lock gives up. */
  private readonly stopping = new AbortController();

  private readonly routes: RouteDoor;
  private readonly events: CoreWiring['events'];

  /** Throws a `BackjobError` (`BACKJOB_ERR_INVALID`) for an invalid option, before any backend opens. */
  constructor(options: BackJobOptions, wiring: CoreWiring) {
    this.options = resolveOptions(options);
    const backend = (this.backend = options.backend ?? wiring.defaultBackend());
    this.routes = wiring.routes;
    this.events = wiring.events;
    this.identifyRequest = createIdentify(options.identify);
    this.originPolicy = resolveOriginPolicy(options.allowedOrigins, options.trustProxy);
    this.claims = createClaims(backend);
    const report = (error: unknown) => this.events.reportError(error);
    this.writer = new EventWriter(backend.store, backend.bus, report);
    this.families = new Families({
      store: backend.store,
      queue: backend.queue,
      writer: this.writer,
      cancel: (id, reason) => this.cancel(id, reason),
      buildChild: async (parent, spec, fields) => {
        // A child is its parent's owner's, in its parent's turn, and joins no other job.
        const starter = { owner: parent.owner, queueKey: queueKeyOf(parent), maxWaiting: 0 };
        const { job } = await buildJob(this.specDeps, spec, { merge: false }, starter);
        return { ...job, ...fields, parent: parent.id, root: parent.root ?? parent.id };
      },
      reportError: report,
      closing: () => this.closing,
    });
    this.contexts = new Contexts(backend.store, this.writer, this.options, this.families);
    this.runner = new Runner({
      store: backend.store,
      queue: backend.queue,
      writer: this.writer,
      definitions: this.definitions,
      contexts: this.contexts,
      families: this.families,
      routes: this.routes,
      runnerId: newRunnerId(),
      reportError: report,
    });
    this.sweep = new RetentionSweep(backend, this.options, report);
    this.specDeps = { options: this.options, definitions: this.definitions, identify: this.identifyRequest, keys: this.keys, routes: this.routes };
    // Downstream of the writer, in this order: the runner releases ended runs, then the app hears.
    this.writer.listen({ ending: (jobId) => this.contexts.silence(jobId) });
    this.writer.listen(this.runner);
    this.writer.listen(this.families);
    this.writer.listen({
      stored: ({ job, events }) => {
        // The app's listeners get copies: the store may keep this very row as the base of the
        // job's next append (SQLite does), and the bus hands these events to the watchers, so a
        // listener that redacts what it logs must not rewrite the job. Copied only when heard.
        let copy: JobRecord | undefined;
        for (const event of events) {
          if (event.type === 'job:created' || this.events.listenerCount(event.type) === 0) continue;
          copy ??= structuredClone(job);
          this.events.emitSafely(event.type, copy, structuredClone(event));
        }
      },
    });
    this.ready = this.init(options.key);
    // Callers that await `ready` still see the rejection; this only keeps it from going unhandled.
    this.ready.catch(report);
  }

  private async init(key: string | undefined): Promise<void> {
    const { store, bus, queue } = this.backend;
    this.keys.load(key ?? (await store.secret()));
    this.unsubscribeBus = bus.subscribe((message) => {
      this.runner.onBus(message);
      this.families.onBus(message);
    });
    if (this.options.worker) {
      await this.backend.lockRunner?.(this.stopping.signal);
      await recoverJobs(this.backend, this.writer, this.families);
      queue.process(this.runner.process, this.options.concurrency);
    }
    await this.sweep.start();
  }

  // ───────────────────────────── jobs ─────────────────────────────

  define(name: string, handler: JobHandler, options?: DefineOptions): void {
    this.definitions.define(name, handler, options);
  }

  definition(name: string): Definition | undefined {
    return this.definitions.get(name);
  }

  start(specs: BatchMemberSpec[], options?: BatchStartOptions): Promise<StartResult>;
  start(spec: JobSpec, options?: StartOptions): Promise<StartResult>;
  async start(given: JobSpec | BatchMemberSpec[], options: StartOptions | BatchStartOptions = {}): Promise<StartResult> {
    const spec = Array.isArray(given) ? given.map(takeSpec) : takeSpec(given);
    await this.ready;
    if (this.closing) throw new BackjobError('BACKJOB_ERR_CLOSED', 'BackJob is closing: no new jobs');
    if (Array.isArray(spec)) {
      const { store, queue } = this.backend;
      const deps = { specDeps: this.specDeps, store, queue, writer: this.writer, cancel: (id: string, reason: string) => this.cancel(id, reason) };
      const id = await startBatch(deps, spec, options);
      return { id, token: this.tokenFor(id), merged: false };
    }
    const { job, maxWaiting } = await buildJob(this.specDeps, spec, options);
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
   * through the bus and aborts its signal. Its descendants still live are
   * canceled right after (see `Families`).
   */
  async cancel(id: string, reason = 'canceled'): Promise<boolean> {
    await this.ready;
    const job = await this.backend.store.get(id);
    if (!job || isEnded(job.status)) return false;
    if (job.status === 'waiting') await this.backend.queue.remove(id);
    const result = (await this.writer.end(id, { type: 'job:canceled', reason })).get(id);
    // Another end may have been written first (the handler finishing in the same write): then this one was dropped.
    return result?.events.some((event) => event.type === 'job:canceled') ?? false;
  }

  async list(filter: ListFilter = {}): Promise<JobRecord[]> {
    await this.ready;
    return this.backend.store.list(checkListFilter(filter));
  }

  /**
   * A job context for a job this process does not run itself: the one a
   * dispatched route request gets as `req.backjob`. `onEnd` runs when the
   * context finishes or fails the job (the route ends its response there).
   */
  async contextFor(id: string, options: { signal: AbortSignal; onEnd?: () => void }): Promise<JobContext> {
    await this.ready;
    return this.contexts.forRequest(id, options);
  }

  // ───────────────────────────── access ─────────────────────────────

  identify(req: IncomingMessage): Promise<string | null> {
    return this.identifyRequest(req);
  }

  async authorize(id: string, access: Access): Promise<JobRecord | null> {
    await this.ready;
    return authorize(this.backend.store, this.keys, id, access);
  }

  tokenFor(id: string): string {
    return this.keys.tokenFor(id);
  }

  key(): Buffer {
    return this.keys.key();
  }

  claimOnce(key: string, ttlMs: number): Promise<boolean> {
    return this.claims(key, ttlMs);
  }

  isLaunchableRoute(path: string): boolean {
    return isLaunchableRoute(this.options.routes, path);
  }

  originAllowed(origin: string, req: IncomingMessage): boolean {
    return originAllowed(origin, req, this.originPolicy, this.appTrustProxy);
  }

  /** An error the shim survived, for the app's `error` listeners (or a process warning). */
  reportError(error: unknown): void {
    this.events.reportError(error);
  }

  learnTrustProxy(trust: TrustProxy | undefined): void {
    if (typeof trust === 'function') this.appTrustProxy = trust;
  }

  // ───────────────────────────── shutdown ─────────────────────────────

  /**
   * Stops taking work, aborts every running job's signal, gives handlers a
   * grace to end, records what is still running as interrupted, and writes
   * what is left (at most a few seconds). The backend stays open for the
   * doors to close first: see {@link closeBackend}.
   */
  async stopWork(): Promise<void> {
    this.closing = true;
    this.runner.refuse();
    this.writer.close();
    this.stopping.abort();
    // After `ready`: a close that comes before the start-up finished must still stop the timer it sets.
    await this.ready.catch(() => {});
    this.sweep.stop();
    this.definitions.close();
    // A parent that ended just before close() takes its children with it first: its cancels are
    // already under way, and a running child must end canceled, not complete on the shutdown abort.
    await settlesWithin(this.families.settle(), CLOSE_WRITE_GRACE_MS);
    await this.runner.stopRuns();
    const settled = (async () => {
      await this.runner.interruptAll();
      await this.writer.drain();
      // What children told their parents meanwhile (news is gathered for a few ms), the cancels and
      // batch ends that set off, and what those wrote.
      await this.families.settle();
      await this.writer.drain();
    })();
    if (!(await settlesWithin(settled, CLOSE_WRITE_GRACE_MS))) {
      const seconds = CLOSE_WRITE_GRACE_MS / 1000;
      this.events.reportError(
        new BackjobError('BACKJOB_ERR_SHUTDOWN', `The store did not answer within ${seconds} s of close(): what was not yet written (never acknowledged) is dropped`),
      );
    }
  }

  async closeBackend(): Promise<void> {
    this.unsubscribeBus?.();
    await this.backend.close();
  }
}
