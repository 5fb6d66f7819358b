/**
 * The contract between the shared WebSocket connection (`connection.ts`)
 * and the elements that watch jobs through it.
 */
import type { ErrorCode, JobEvent, JobSnapshot, JobStatus } from '../shared/protocol.js';
import type { TransportChoice, WebSocketConstructor } from './transport.js';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** One notification to a watcher. Fields are present only when they changed. */
export interface WatchUpdate {
  /** The job's latest state. */
  snapshot?: JobSnapshot;
  /** New `job:log` events, in seq order, never one already delivered to this watcher. */
  lines?: JobEvent[];
  /** The server lost the history needed to resume: drop lines shown so far (they were resent). */
  reset?: boolean;
  /** The shared socket's state changed. */
  connection?: ConnectionState;
  /** The server refused or failed the subscription (forbidden, not found, …). */
  error?: { code: ErrorCode; message: string };
}

export type WatchListener = (update: WatchUpdate) => void;

/** Which page of the user's own jobs to read: newest first. */
export interface ListRequest {
  /** Only jobs in these states. Default all. */
  status?: JobStatus[];
  /** Jobs per page, 1–100. Default 20. */
  limit?: number;
  /** The page after this one: the `next` of an earlier page. */
  before?: string;
}

/** A page of the user's own jobs. */
export interface ListPage {
  jobs: JobSnapshot[];
  /** Where the next page starts; absent on the last page. */
  next?: string;
}

/** One notification to a list listener. */
export interface ListUpdate {
  /** The user's jobs that were created, progressed or ended (whatever the list's filter). */
  changed?: JobSnapshot[];
  /** The shared socket's state changed. */
  connection?: ConnectionState;
  /** The socket was lost and is back: changes in between were missed, so read the pages again. */
  resync?: boolean;
}

/** A live list of the user's own jobs, from {@link Connection.listJobs}. */
export interface JobList {
  /** Reads a page; rejects with the server's reason (`BACKJOB_ERR_UNAUTHORIZED` for nobody). */
  page(request?: ListRequest): Promise<ListPage>;
  /** Stops the updates; the socket closes when nobody watches anything. */
  close(): void;
}

/**
 * One WebSocket per endpoint, shared by every element on the page and
 * reference-counted by `watch`.
 */
export interface Connection {
  readonly state: ConnectionState;
  /**
   * Milliseconds to add to the browser's `Date.now()` to get the server's
   * clock, which stamps `startedAt`, `endedAt` and the rest: learned from the
   * server's `hello`. 0 (or absent) until known, or when the server does not say.
   */
  readonly clockOffset?: number;
  /**
   * Watches a job. The listener first receives everything known so far (a
   * late-joining element gets the full log and the snapshot), then every
   * change. Returns a function that stops watching; the socket closes when
   * nobody watches anything.
   */
  watch(jobId: string, token: string | undefined, listener: WatchListener): () => void;
  /** Asks the server to cancel a job; rejects with the server's reason. */
  cancel(jobId: string, token?: string): Promise<void>;
  /** Follows the page's user's own jobs: pages on request, then every change pushed by the server. */
  listJobs(listener: (update: ListUpdate) => void): JobList;
}

/** Options of `SharedConnection` (connection.ts). */
export interface ConnectionOptions {
  /** Constructor to open sockets with. Default: the global `WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Milliseconds the socket stays open after the last watcher left (an element moved in the DOM re-watches at once). Default 1,000. */
  idleGrace?: number;
  /** First reconnect delay in ms; it doubles per failed attempt. Default 500. */
  minBackoff?: number;
  /** Longest reconnect delay in ms. Default 30,000. */
  maxBackoff?: number;
  /** Log lines kept per job for watchers that join later (oldest dropped first). Default 10,000. */
  maxLines?: number;
  /**
   * Where to ask for a connection ticket before each socket (see
   * docs/protocol.md): the HTTP API's `/tickets` beside the socket's `/ws`
   * by default; `false` opens sockets without one (the upgrade is then
   * identified by its cookies alone).
   */
  tickets?: string | false;
  /**
   * `websocket`, `sse` (Server-Sent Events at the HTTP API's `/events` beside
   * the socket's `/ws`), or `auto`: the WebSocket, falling back to SSE once
   * two sockets in a row closed before they opened (a proxy refusing
   * upgrades; see docs/protocol.md). Default: `configureBackjob({ transport })`, else `auto`.
   */
  transport?: TransportChoice;
}
