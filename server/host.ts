/**
 * The internal seam: the one object the composition root hands to the doors
 * (router, live channel, dispatch), and the route door as the core sees it.
 * Not part of the published API: each door takes the narrow part it needs.
 */
import type { IncomingMessage } from 'node:http';
import type { Backend, JobRecord, ListFilter, RouteTarget } from './contracts.js';
import type { Access, BackJobOptions, BatchMemberSpec, BatchStartOptions, DefineOptions, JobContext, JobHandler, JobSpec, StartOptions, StartResult, TrustProxy } from './types.js';

/**
 * Options after defaults were merged and validated.
 * @internal
 */
export type ResolvedOptions = Required<Omit<BackJobOptions, 'backend' | 'key' | 'identify' | 'baseUrl' | 'allowedOrigins' | 'trustProxy'>> &
  Pick<BackJobOptions, 'baseUrl'>;

/**
 * A defined in-process job type.
 * @internal
 */
export interface Definition {
  name: string;
  handler: JobHandler;
  options: DefineOptions;
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

  /**
   * A batch (see `BackJob.start`). The HTTP door validates a `{ batch, title }`
   * body (each member as a single browser start: launchable, at most 1,000
   * members, no nesting) and calls this with `{ as: req, title }`.
   */
  start(specs: BatchMemberSpec[], options?: BatchStartOptions): Promise<StartResult>;
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
