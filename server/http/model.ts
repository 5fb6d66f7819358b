/**
 * The HTTP API's own small model, the same under every framework: what a
 * handler reads of a request and what it answers. The adapters (router.ts for
 * Express, fastify.ts, node.ts) turn their framework's request into an
 * {@link ApiRequest} and write the {@link ApiReply} back; nothing here knows
 * any framework.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Access, BatchMemberSpec, BatchStartOptions, JobRecord, JobSpec, ListFilter, StartOptions, StartResult, TrustProxy } from '../types.js';
import type { Definition, ResolvedOptions } from '../host.js';

/**
 * What the HTTP API needs of the shim, and nothing more. The request the
 * handlers pass to `identify` and to `start({ as })` is the framework's own
 * (an Express request, a Fastify request, a bare `IncomingMessage`), so that
 * `identify` sees what the app's middleware put on it.
 */
export interface HttpHost {
  readonly options: Pick<ResolvedOptions, 'basePath'>;
  readonly ready: Promise<void>;
  identify(req: IncomingMessage): Promise<string | null>;
  authorize(id: string, access: Access): Promise<JobRecord | null>;
  start(specs: BatchMemberSpec[], options?: BatchStartOptions): Promise<StartResult>;
  start(spec: JobSpec, options?: StartOptions): Promise<StartResult>;
  status(id: string): Promise<JobRecord | null>;
  cancel(id: string, reason?: string): Promise<boolean>;
  list(filter?: ListFilter): Promise<JobRecord[]>;
  definition(name: string): Definition | undefined;
  isLaunchableRoute(path: string): boolean;
  originAllowed(origin: string, req: IncomingMessage): boolean;
  learnTrustProxy(trust: TrustProxy | undefined): void;
  key(): Buffer;
  tokenFor(id: string): string;
}

/** A request to the HTTP API, as every adapter hands it over. */
export interface ApiRequest {
  /** Upper case. */
  readonly method: string;
  /** The path below `basePath`, percent-encoded as sent: `/jobs/abc/cancel`. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** The route's decoded path parameters (`id`). */
  readonly params: Readonly<Record<string, string>>;
  /** The parsed JSON body, for routes that take one (see body.ts); undefined otherwise. */
  readonly body: unknown;
  /** The connection's request: origin checks read its socket and headers. */
  readonly raw: IncomingMessage;
  /** The framework's own request (Express `req`, Fastify `request`, or `raw`): what `identify` receives. */
  readonly framework: IncomingMessage;
}

/** What a handler answers: a status, headers, and a JSON value or the bytes of a file. */
export interface ApiReply {
  status: number;
  headers?: Record<string, string>;
  /** Sent as `application/json` (with `Cache-Control: no-store`), unless `bytes` is set. */
  json?: unknown;
  /** A file, sent as is with the headers given (the client bundle). */
  bytes?: Buffer | string;
}

/** A handler of the API. */
export type ApiHandler = (req: ApiRequest) => Promise<ApiReply>;

/** One route of the API; `pattern` is matched against the path below `basePath`. */
export interface ApiRoute {
  readonly method: 'GET' | 'POST' | 'OPTIONS';
  readonly pattern: RegExp;
  /** Names of the pattern's capture groups, in order. */
  readonly params?: readonly string[];
  /**
   * Takes a JSON body (at most `maxBody` bytes); checked by `accept` before a
   * byte is read. `limitOf` narrows the limit once the body is parsed, by what it is.
   */
  readonly body?: { maxBody: number; limitOf?(body: unknown): number; accept(req: Omit<ApiRequest, 'body'>): void };
  /** Headers every answer of the route carries, its errors too (CORS); null for none. */
  readonly headers?: (req: Omit<ApiRequest, 'body'>) => Record<string, string> | null;
  /**
   * The handler, or null when the request is not the API's after all (the
   * client bundle of another version, a preflight from an origin not
   * allowed): it then passes on to the app, as if nothing matched.
   */
  readonly handle: (req: ApiRequest) => Promise<ApiReply | null>;
}

/** Node's request handler shape, with the framework's `next` when there is one. */
export type RawHandler = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void | Promise<void>;

/**
 * An endpoint below `basePath` that writes its response itself (a stream:
 * the live channel's Server-Sent Events), for every request whose path below
 * `basePath` is `path` or begins with `path/`.
 */
export interface RawRoute {
  readonly method: string;
  readonly path: string;
  readonly handle: RawHandler;
}
