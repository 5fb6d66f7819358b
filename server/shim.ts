/**
 * The composition root, with server/backjob.ts: the one place that wires the
 * transport-neutral core to its doors — the HTTP router, the live channel,
 * route dispatch. Nothing else imports the doors; the core imports none of
 * them. The default backend (SQLite) is picked in server/backjob.ts, so that
 * an entry that never uses it (`backjob/redis`) never loads it.
 */
import type { Server } from 'node:http';
import type { Router } from 'express';
import { Core } from './core/core.js';
import { BackJobEmitter } from './core/emitter.js';
import { invalidOption } from './validate.js';
import { Dispatch } from './dispatch/dispatch.js';
import { createHttpApi } from './http/api.js';
import { createRouter } from './http/router.js';
import { HTTP_API, recognizeInbound } from './http/wiring.js';
import { createSseTransport, type SseTransport } from './live/sse.js';
import { attachHub } from './live/websocket.js';
import type { Access, AttachOptions, Backend, BackJob, BackJobOptions, BatchMemberSpec, BatchStartOptions, DefineOptions, Hub, JobHandler, JobRecord, JobSpec, ListFilter, StartOptions, StartResult } from './types.js';

/**
 * The BackJob shim (see {@link BackJob} for the API). Create it with
 * {@link createBackJob}.
 *
 * Typed events fire in the process that wrote the event (the one running the
 * job); the bus tells the other processes.
 */
export class BackJobServer extends BackJobEmitter implements BackJob {
  readonly ready: Promise<void>;
  /**
   * The one internal object the doors are handed (see {@link BackJobHost}); for tests and the doors, not apps.
   * @internal
   */
  readonly host: Core;
  private readonly dispatch: Dispatch;
  /** The live channel over Server-Sent Events, for networks that refuse upgrades: one per shim, served by every adapter. */
  private readonly sse: SseTransport;
  private readonly hubs = new Set<Hub>();
  private closing: Promise<void> | null = null;

  /** @param defaultBackend the backend when `options` name none (`createBackJob`: SQLite) */
  constructor(options: BackJobOptions = {}, defaultBackend: () => Backend = noDefaultBackend) {
    super();
    // Route dispatch needs the core and the core calls dispatch: the closures reach it once it exists (no job runs before).
    const host: Core = new Core(options, {
      defaultBackend,
      routes: { prepare: (target, req) => dispatch.prepare(target, req), run: (job, context) => dispatch.run(job, context) },
      events: this,
    });
    const dispatch = new Dispatch(host);
    this.host = host;
    this.dispatch = dispatch;
    this.sse = createSseTransport(host);
    const events = ['GET', 'POST', 'OPTIONS'].map((method) => ({ method, path: '/events', handle: this.sse.handle }));
    // Every HTTP adapter (Express, Fastify, node:http) serves this one API; the public object carries it for them.
    Object.defineProperty(this, HTTP_API, {
      value: createHttpApi({ host, inbound: [recognizeInbound((req, res, url) => dispatch.recognize(req, res, url))], rawRoutes: events }),
    });
    this.ready = host.ready;
  }

  define<P = any>(name: string, handler: JobHandler<P>, options: DefineOptions = {}): this {
    this.host.define(name, handler as JobHandler, options);
    return this;
  }

  start(specs: BatchMemberSpec[], options?: BatchStartOptions): Promise<StartResult>;
  start(spec: JobSpec, options?: StartOptions): Promise<StartResult>;
  start(spec: JobSpec | BatchMemberSpec[], options?: StartOptions | BatchStartOptions): Promise<StartResult> {
    return Array.isArray(spec) ? this.host.start(spec, options) : this.host.start(spec, options);
  }

  status(id: string): Promise<JobRecord | null> {
    return this.host.status(id);
  }

  cancel(id: string, reason?: string): Promise<boolean> {
    return this.host.cancel(id, reason);
  }

  list(filter?: ListFilter): Promise<JobRecord[]> {
    return this.host.list(filter);
  }

  authorize(id: string, access: Access): Promise<JobRecord | null> {
    return this.host.authorize(id, access);
  }

  tokenFor(id: string): string {
    return this.host.tokenFor(id);
  }

  router(): Router {
    return createRouter(this);
  }

  attach(server: Server, options?: AttachOptions): Hub {
    const hub = attachHub(this.host, server, options);
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
    this.closing ??= (async () => {
      await this.host.stopWork();
      this.sse.close();
      for (const hub of this.hubs) await hub.close().catch((error) => this.reportError(error));
      await this.host.closeBackend();
    })();
    return this.closing;
  }
}

function noDefaultBackend(): never {
  throw invalidOption('backend', 'a backend such as `redis({ url })`', undefined);
}
