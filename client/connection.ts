/**
 * The page's live channel: one connection per endpoint (a WebSocket, or SSE
 * where sockets cannot open: see link.ts), shared by every element that
 * watches a job, reference-counted by `watch`, resuming each job from the
 * last seq it received. Wire format: docs/protocol.md.
 *
 * Nothing here touches `window` or `location` until a connection is asked
 * for, so the module imports cleanly in Node (SSR, tests).
 */
import type { ErrorCode, JobEvent, JobSnapshot, ServerMessage } from '../shared/protocol.js';
import { endpointUrl, eventsUrlOf, ticketUrlOf } from './endpoints.js';
import { Link } from './link.js';
import { MAX_STREAM_JOBS, type StreamJob } from './sse-socket.js';
import { eventsArrived, initialUpdate, notify, safely, snapshotArrived, watchedJob, type WatchedJob, type Watcher } from './watched-job.js';
import { checkTransport, type WebSocketConstructor } from './transport.js';
import type { Connection, ConnectionOptions, ConnectionState, JobList, ListPage, ListRequest, ListUpdate, WatchListener } from './types.js';

export type { Connection, ConnectionOptions, ConnectionState, WatchListener, WatchUpdate } from './types.js';
export type { TransportChoice, WebSocketConstructor, WebSocketLike } from './transport.js';
export { endpointUrl } from './endpoints.js';
export { WS_FAILURES_BEFORE_SSE } from './link.js';

/** A request the server refused, with its `BACKJOB_ERR_…` code. */
export class BackjobConnectionError extends Error {
  constructor(
    readonly code: ErrorCode | 'BACKJOB_ERR_DISCONNECTED',
    message: string,
  ) {
    super(message);
    this.name = 'BackjobConnectionError';
  }
}

/** Replies that retrying with the same credentials cannot change. */
const FINAL_ERRORS: ReadonlySet<ErrorCode> = new Set(['BACKJOB_ERR_NOT_FOUND', 'BACKJOB_ERR_FORBIDDEN', 'BACKJOB_ERR_BAD_FRAME', 'BACKJOB_ERR_TOO_MANY_JOBS']);
/**
 * Replies after which the server holds no subscription but asking again can
 * work: rate-limited, or the server failed (a store error) and dropped it.
 */
const RETRY_ERRORS: ReadonlySet<ErrorCode> = new Set(['BACKJOB_ERR_RATE_LIMITED', 'BACKJOB_ERR_INTERNAL']);
/** First delay before asking again after one of those; it doubles while they repeat (up to `maxBackoff`). */
const RETRY_MS = 1_000;
/** A page asked for and not yet answered. */
interface PendingPage {
  request: ListRequest;
  sent: boolean;
  resolve: (page: ListPage) => void;
  reject: (error: Error) => void;
}

interface PendingCancel {
  job: string;
  token?: string;
  sent: boolean;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** A shared, reconnecting WebSocket to one BackJob endpoint. Use {@link getConnection} on a page. */
export class SharedConnection implements Connection {
  readonly url: string;
  private readonly idleGrace: number;
  private readonly maxLines: number;
  private readonly jobs = new Map<string, WatchedJob>();
  private readonly cancels = new Map<string, PendingCancel>();
  private readonly lists = new Set<(update: ListUpdate) => void>();
  private readonly pages = new Map<string, PendingPage>();
  /** A socket was open before: the next open is a reconnect, after which lists read their pages again. */
  private wasOpen = false;
  private currentState: ConnectionState = 'closed';
  private offset = 0;
  private nextRef = 1;
  private idleTimer?: ReturnType<typeof setTimeout>;
  private readonly link: Link;

  constructor(url: string, options: ConnectionOptions = {}) {
    const Socket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    checkTransport(options.transport);
    const eventsUrl = eventsUrlOf(url);
    const sse = eventsUrl !== null && typeof fetch === 'function';
    if (!Socket && !(sse && options.transport !== 'websocket')) {
      throw new TypeError('No WebSocket available: pass `{ WebSocket }` (e.g. from the `ws` package) outside a browser');
    }
    this.url = url;
    this.idleGrace = options.idleGrace ?? 1_000;
    this.maxLines = options.maxLines ?? 10_000;
    this.link = new Link(
      {
        url,
        Socket,
        eventsUrl,
        ticketUrl: options.tickets === false ? null : (options.tickets ?? ticketUrlOf(url)),
        transport: options.transport,
        minBackoff: options.minBackoff ?? 500,
        maxBackoff: options.maxBackoff ?? 30_000,
      },
      {
        inUse: () => this.inUse(),
        streamJobs: () => this.streamJobs(),
        state: (state) => this.setState(state),
        opened: (streamed) => this.opened(streamed),
        received: (message) => this.receive(message),
        lost: () => this.lost(),
      },
    );
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  get clockOffset(): number {
    return this.offset;
  }

  watch(jobId: string, token: string | undefined, listener: WatchListener): () => void {
    clearTimeout(this.idleTimer);
    let job = this.jobs.get(jobId);
    const isNew = !job;
    if (!job) {
      job = watchedJob(token);
      this.jobs.set(jobId, job);
    } else if (token && token !== job.token) {
      // A watcher with a (new) token may succeed where an earlier attempt
      // was refused, or is about to be (a watcher without the token asked
      // first and has no answer yet): ask again with this token. A stream
      // already running needs nothing.
      job.token = token;
      if (job.refused || !job.streaming) {
        job.refused = false;
        job.error = undefined;
        // A socket still connecting throws on send; its onopen subscribes every job not refused.
        if (this.link.open) this.subscribe(jobId, job);
      }
    }
    const watcher: Watcher = { listener, ready: false };
    job.watchers.add(watcher);
    const watched = job;
    // Delivered after `watch` returns (the caller may not hold its unwatch
    // function yet), as one update with everything known by then; until then
    // the watcher is skipped, so nothing reaches it twice.
    queueMicrotask(() => {
      if (!watched.watchers.has(watcher)) return;
      watcher.ready = true;
      safely(listener, initialUpdate(watched, this.currentState));
    });
    if (isNew) {
      if (this.link.open) this.subscribe(jobId, job);
      else this.link.connect();
    }
    let watching = true;
    return () => {
      if (!watching) return;
      watching = false;
      this.unwatch(jobId, watched, watcher);
    };
  }

  cancel(jobId: string, token?: string): Promise<void> {
    clearTimeout(this.idleTimer);
    return new Promise<void>((resolve, reject) => {
      const ref = `c${this.nextRef++}`;
      const settle = () => {
        this.cancels.delete(ref);
        this.idleIfUnused();
      };
      this.cancels.set(ref, {
        job: jobId,
        token: token ?? this.jobs.get(jobId)?.token,
        sent: false,
        resolve: () => (settle(), resolve()),
        reject: (error) => (settle(), reject(error)),
      });
      if (this.link.open) this.sendCancel(ref);
      else this.link.connect();
    });
  }

  listJobs(listener: (update: ListUpdate) => void): JobList {
    clearTimeout(this.idleTimer);
    this.lists.add(listener);
    if (!this.link.active) this.link.connect();
    let open = true;
    return {
      page: (request = {}) => this.requestPage(request),
      close: () => {
        if (!open) return;
        open = false;
        this.lists.delete(listener);
        if (this.lists.size === 0 && this.link.open) this.send({ type: 'unlist' });
        this.idleIfUnused();
      },
    };
  }

  private requestPage(request: ListRequest): Promise<ListPage> {
    return new Promise<ListPage>((resolve, reject) => {
      const ref = `l${this.nextRef++}`;
      this.pages.set(ref, { request, sent: false, resolve: (page) => (this.pages.delete(ref), resolve(page)), reject: (error) => (this.pages.delete(ref), reject(error)) });
      if (this.link.open) this.sendPage(ref);
      else this.link.connect();
    });
  }

  private sendPage(ref: string): void {
    const pending = this.pages.get(ref);
    if (!pending) return;
    this.send({ type: 'list', ref, ...pending.request }, () => (pending.sent = true));
  }

  /** Closes the socket now and forgets every job; watchers get `connection: 'closed'`. */
  close(): void {
    clearTimeout(this.idleTimer);
    for (const pending of this.cancels.values()) pending.reject(new BackjobConnectionError('BACKJOB_ERR_DISCONNECTED', 'Connection closed'));
    for (const pending of this.pages.values()) pending.reject(new BackjobConnectionError('BACKJOB_ERR_DISCONNECTED', 'Connection closed'));
    this.lists.clear();
    this.link.close('Closed');
    this.setState('closed');
    for (const job of this.jobs.values()) clearTimeout(job.retryTimer);
    this.jobs.clear();
  }

  private unwatch(jobId: string, job: WatchedJob, watcher: Watcher): void {
    job.watchers.delete(watcher);
    if (job.watchers.size > 0 || this.jobs.get(jobId) !== job) return;
    this.jobs.delete(jobId);
    clearTimeout(job.retryTimer);
    if (this.link.open) this.send({ type: 'unsubscribe', job: jobId });
    this.idleIfUnused();
  }

  /** Whether anything needs the socket: a watched job, a pending cancel, a list. */
  private inUse(): boolean {
    return this.jobs.size > 0 || this.cancels.size > 0 || this.lists.size > 0;
  }

  /** Nobody watches and no cancel is pending: close the socket after a grace period. */
  private idleIfUnused(): void {
    if (this.inUse()) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.inUse()) return;
      this.link.close('Idle');
      this.setState('closed');
    }, this.idleGrace);
  }

  /** The jobs an SSE stream subscribes in its own request (`Last-Event-ID` resumes each after its last seq). */
  private streamJobs(): StreamJob[] {
    const jobs: StreamJob[] = [];
    for (const [job, watched] of this.jobs) {
      if (watched.refused || jobs.length >= MAX_STREAM_JOBS) continue;
      jobs.push({ job, after: watched.lastSeq, ...(watched.token ? { token: watched.token } : {}) });
    }
    return jobs;
  }

  private opened(streamed: ReadonlySet<string>): void {
    this.setState('open');
    for (const [jobId, job] of this.jobs) {
      if (job.refused) continue;
      if (!streamed.has(jobId)) this.subscribe(jobId, job);
      else {
        // Subscribed by the stream's own request: its snapshot (which carries no ref) opens the stream.
        clearTimeout(job.retryTimer);
        job.streaming = false;
        job.ref = undefined;
      }
    }
    for (const [ref, pending] of this.cancels) if (!pending.sent) this.sendCancel(ref);
    for (const [ref, pending] of this.pages) if (!pending.sent) this.sendPage(ref);
    // Changes while the socket was down were missed: lists read their pages again (which registers them anew).
    if (this.wasOpen) for (const listener of this.lists) this.deliverList(listener, { resync: true });
    this.wasOpen = true;
  }

  private lost(): void {
    // A cancel already on the wire may or may not have happened: say so rather than guess.
    for (const pending of this.cancels.values()) {
      if (pending.sent) pending.reject(new BackjobConnectionError('BACKJOB_ERR_DISCONNECTED', 'Connection lost before the server answered'));
    }
    // A page on the wire is asked again on the next socket.
    for (const pending of this.pages.values()) pending.sent = false;
  }

  private subscribe(jobId: string, job: WatchedJob): void {
    clearTimeout(job.retryTimer);
    job.streaming = false;
    job.ref = `s${this.nextRef++}`;
    this.send({ type: 'subscribe', ref: job.ref, job: jobId, token: job.token, after: job.lastSeq });
  }

  private sendCancel(ref: string): void {
    const pending = this.cancels.get(ref);
    if (!pending) return;
    // Counted as sent once on the wire: one still in the outbox when the socket drops is simply sent again.
    this.send({ type: 'cancel', ref, job: pending.job, token: pending.token }, () => (pending.sent = true));
  }

  private send(message: object, sent?: () => void): void {
    this.link.send(message, sent);
  }

  private receive(message: ServerMessage): void {
    switch (message.type) {
      case 'snapshot':
        return this.onSnapshot(message.job, message.snapshot, message.reset === true);
      case 'events':
        return this.onEvents(message.job, message.events);
      case 'canceled':
        if (message.ref) this.cancels.get(message.ref)?.resolve();
        return;
      case 'list':
        if (message.ref) this.pages.get(message.ref)?.resolve(message.next === undefined ? { jobs: message.jobs } : { jobs: message.jobs, next: message.next });
        return;
      case 'list:changed':
        for (const listener of this.lists) this.deliverList(listener, { changed: message.jobs });
        return;
      case 'error':
        return this.onError(message);
      case 'hello':
        // The server's clock against ours, as of now (ignoring the trip's half, which is small against seconds).
        this.offset = typeof message.time === 'number' && Number.isFinite(message.time) ? message.time - Date.now() : 0;
        return this.link.greet(message.rateLimit);
    }
  }

  private onSnapshot(jobId: string, snapshot: JobSnapshot, reset: boolean): void {
    const job = this.jobs.get(jobId);
    if (job) notify(job, snapshotArrived(job, snapshot, reset));
  }

  private onEvents(jobId: string, events: JobEvent[]): void {
    const job = this.jobs.get(jobId);
    const update = job && eventsArrived(job, events, this.maxLines);
    if (update) notify(job, update);
  }

  private onError(message: Extract<ServerMessage, { type: 'error' }>): void {
    const pending = message.ref ? (this.cancels.get(message.ref) ?? this.pages.get(message.ref)) : undefined;
    if (pending) return pending.reject(new BackjobConnectionError(message.code, message.message));
    if (!message.job && message.code === 'BACKJOB_ERR_RATE_LIMITED') return this.retryUnanswered();
    const job = message.job ? this.jobs.get(message.job) : undefined;
    if (!job || !message.job) return;
    // The answer to a subscribe since replaced (by one with a token, say): the latest one gets its own.
    if (message.ref && message.ref !== job.ref) return;
    if (RETRY_ERRORS.has(message.code)) {
      // Not the watchers' concern yet: ask again later, resuming after the last seq received.
      // On a socket that is not open by then, onopen resubscribes instead.
      const jobId = message.job;
      clearTimeout(job.retryTimer);
      job.retryTimer = setTimeout(() => this.link.open && this.subscribe(jobId, job), this.link.backoff(RETRY_MS, job.retries++));
      return;
    }
    if (FINAL_ERRORS.has(message.code)) job.refused = true;
    job.error = { code: message.code, message: message.message };
    notify(job, { error: job.error });
  }

  /**
   * The server dropped frames over its rate limit without saying which (it
   * does not read them): every subscribe still unanswered is asked again
   * later. Only another client sharing the limit (or a server whose limit
   * changed) gets here; this page paces itself within it.
   */
  private retryUnanswered(): void {
    for (const [jobId, job] of this.jobs) {
      if (job.streaming || job.refused) continue;
      clearTimeout(job.retryTimer);
      job.retryTimer = setTimeout(() => this.link.open && this.subscribe(jobId, job), this.link.backoff(RETRY_MS, job.retries++));
    }
  }

  private setState(state: ConnectionState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    for (const job of this.jobs.values()) notify(job, { connection: state });
    for (const listener of this.lists) this.deliverList(listener, { connection: state });
  }

  private deliverList(listener: (update: ListUpdate) => void, update: ListUpdate): void {
    safely(listener, update);
  }
}

const shared = new Map<string, SharedConnection>();

/**
 * The page's connection to a BackJob endpoint (default: `/backjob/ws` on the
 * page's host). Every caller with the same endpoint gets the same one.
 */
export function getConnection(url?: string): Connection {
  const resolved = endpointUrl(url);
  let connection = shared.get(resolved);
  if (!connection) shared.set(resolved, (connection = new SharedConnection(resolved)));
  return connection;
}
