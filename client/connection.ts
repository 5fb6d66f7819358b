/**
 * The page's live channel: one WebSocket per endpoint, shared by every element
 * that watches a job, reference-counted by `watch`, reconnecting with
 * exponential backoff and jitter and resuming each job from the last seq it
 * received. Wire format: docs/protocol.md.
 *
 * Nothing here touches `window` or `location` until a connection is asked
 * for, so the module imports cleanly in Node (SSR, tests).
 */
import { applyEvent, SUBPROTOCOL, TICKET_PROTOCOL_PREFIX, type ErrorCode, type JobEvent, type JobSnapshot, type ServerMessage } from '../shared/protocol.js';
import { configuredTransport } from './config.js';
import { UNAVAILABLE, endpointUrl, eventsUrlOf, fetchTicket, ticketUrlOf } from './endpoints.js';
import { Outbox } from './outbox.js';
import { SseSocket, MAX_STREAM_JOBS, type StreamJob } from './sse-socket.js';
import { OPEN, TRANSPORTS, type TransportChoice, type WebSocketConstructor, type WebSocketLike } from './transport.js';
import type { Connection, ConnectionState, JobList, ListPage, ListRequest, ListUpdate, WatchListener, WatchUpdate } from './types.js';

export type { Connection, ConnectionState, WatchListener, WatchUpdate } from './types.js';
export type { TransportChoice, WebSocketConstructor, WebSocketLike } from './transport.js';
export { endpointUrl } from './endpoints.js';

/** Options of {@link SharedConnection}. */
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
   * the socket's `/ws`), or `auto`: the WebSocket, falling back to SSE for
   * good once {@link WS_FAILURES_BEFORE_SSE} sockets in a row closed before
   * they opened (a proxy refusing upgrades). Default: `configureBackjob({ transport })`, else `auto`.
   */
  transport?: TransportChoice;
}

/** Sockets in a row that never opened before `auto` takes SSE instead. */
export const WS_FAILURES_BEFORE_SSE = 2;

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
/** One `watch()` call: its listener gets nothing until it had its initial delivery. */
interface Watcher {
  listener: WatchListener;
  ready: boolean;
}

/** What the page knows about one job: enough for a late watcher to start where the first one is. */
interface WatchedJob {
  token?: string;
  watchers: Set<Watcher>;
  snapshot?: JobSnapshot;
  /** The job's log lines so far (the newest `maxLines`). */
  lines: JobEvent[];
  /** Seq of the last event received: what a resubscription resumes after. */
  lastSeq: number;
  /**
   * The server answered the latest subscribe with its snapshot. Events before
   * that belong to an earlier subscription (still on their way when it was
   * replaced); the new stream resends them after the seq it asked for.
   */
  streaming: boolean;
  /** `ref` of the latest subscribe: an error for an earlier one (say, refused without the token) is stale. */
  ref?: string;
  error?: { code: ErrorCode; message: string };
  /** The server refused it for good (not found / not allowed): not resubscribed on reconnect. */
  refused: boolean;
  retryTimer?: ReturnType<typeof setTimeout>;
  /** Retries since the stream last delivered events: what the next retry's delay grows with. */
  retries: number;
}

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
  private readonly Socket: WebSocketConstructor | undefined;
  private readonly idleGrace: number;
  private readonly minBackoff: number;
  private readonly maxBackoff: number;
  private readonly maxLines: number;
  private readonly ticketUrl: string | null;
  /** A ticket is being fetched for the next socket. */
  private opening = false;
  private readonly jobs = new Map<string, WatchedJob>();
  private readonly cancels = new Map<string, PendingCancel>();
  private readonly lists = new Set<(update: ListUpdate) => void>();
  private readonly pages = new Map<string, PendingPage>();
  /** A socket was open before: the next open is a reconnect, after which lists read their pages again. */
  private wasOpen = false;
  private socket: WebSocketLike | null = null;
  private currentState: ConnectionState = 'closed';
  private offset = 0;
  private attempts = 0;
  private nextRef = 1;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private idleTimer?: ReturnType<typeof setTimeout>;
  private readonly outbox = new Outbox(() => this.socket);
  private readonly transport: TransportChoice | undefined;
  /** Where the SSE stream is, when the endpoint has one (`…/ws` → `…/events`). */
  private readonly eventsUrl: string | null;
  /** Sockets in a row that closed before they opened: `auto` falls back to SSE past {@link WS_FAILURES_BEFORE_SSE}. */
  private unopened = 0;
  private fellBack = false;
  /** Jobs the current SSE stream subscribed in its own request: not subscribed again as it opens. */
  private streamJobs = new Set<string>();

  constructor(url: string, options: ConnectionOptions = {}) {
    const Socket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (options.transport !== undefined && !TRANSPORTS.includes(options.transport)) {
      throw new TypeError(`Expected \`transport\` to be one of ${TRANSPORTS.join(', ')}`);
    }
    this.transport = options.transport;
    this.eventsUrl = eventsUrlOf(url);
    const sse = this.eventsUrl !== null && typeof fetch === 'function';
    if (!Socket && !(sse && options.transport !== 'websocket')) {
      throw new TypeError('No WebSocket available: pass `{ WebSocket }` (e.g. from the `ws` package) outside a browser');
    }
    this.url = url;
    this.Socket = Socket!;
    this.idleGrace = options.idleGrace ?? 1_000;
    this.minBackoff = options.minBackoff ?? 500;
    this.maxBackoff = options.maxBackoff ?? 30_000;
    this.maxLines = options.maxLines ?? 10_000;
    this.ticketUrl = options.tickets === false ? null : (options.tickets ?? ticketUrlOf(url));
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
      job = { token, watchers: new Set(), lines: [], lastSeq: 0, streaming: false, refused: false, retries: 0 };
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
        if (this.socket?.readyState === OPEN) this.subscribe(jobId, job);
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
      const initial: WatchUpdate = { connection: this.currentState };
      if (watched.snapshot) initial.snapshot = watched.snapshot;
      if (watched.lines.length > 0) initial.lines = watched.lines.slice();
      if (watched.error) initial.error = watched.error;
      this.deliver(watcher, initial);
    });
    if (isNew) {
      if (this.socket?.readyState === OPEN) this.subscribe(jobId, job);
      else this.connect();
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
      if (this.socket?.readyState === OPEN) this.sendCancel(ref);
      else this.connect();
    });
  }

  listJobs(listener: (update: ListUpdate) => void): JobList {
    clearTimeout(this.idleTimer);
    this.lists.add(listener);
    if (!this.socket) this.connect();
    let open = true;
    return {
      page: (request = {}) => this.requestPage(request),
      close: () => {
        if (!open) return;
        open = false;
        this.lists.delete(listener);
        if (this.lists.size === 0 && this.socket?.readyState === OPEN) this.send({ type: 'unlist' });
        this.idleIfUnused();
      },
    };
  }

  private requestPage(request: ListRequest): Promise<ListPage> {
    return new Promise<ListPage>((resolve, reject) => {
      const ref = `l${this.nextRef++}`;
      this.pages.set(ref, { request, sent: false, resolve: (page) => (this.pages.delete(ref), resolve(page)), reject: (error) => (this.pages.delete(ref), reject(error)) });
      if (this.socket?.readyState === OPEN) this.sendPage(ref);
      else this.connect();
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
    this.cancelReconnect();
    for (const pending of this.cancels.values()) pending.reject(new BackjobConnectionError('BACKJOB_ERR_DISCONNECTED', 'Connection closed'));
    for (const pending of this.pages.values()) pending.reject(new BackjobConnectionError('BACKJOB_ERR_DISCONNECTED', 'Connection closed'));
    this.lists.clear();
    const socket = this.socket;
    this.socket = null;
    this.outbox.reset();
    socket?.close(1000, 'Closed');
    this.setState('closed');
    for (const job of this.jobs.values()) clearTimeout(job.retryTimer);
    this.jobs.clear();
  }

  private unwatch(jobId: string, job: WatchedJob, watcher: Watcher): void {
    job.watchers.delete(watcher);
    if (job.watchers.size > 0 || this.jobs.get(jobId) !== job) return;
    this.jobs.delete(jobId);
    clearTimeout(job.retryTimer);
    if (this.socket?.readyState === OPEN) this.send({ type: 'unsubscribe', job: jobId });
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
      this.cancelReconnect();
      const socket = this.socket;
      this.socket = null;
      socket?.close(1000, 'Idle');
      this.setState('closed');
    }, this.idleGrace);
  }

  private connect(): void {
    if (this.socket || this.opening || this.reconnectTimer !== undefined) return;
    this.setState(this.attempts === 0 ? 'connecting' : 'reconnecting');
    this.opening = true;
    const sse = this.usesSse();
    void (sse ? Promise.resolve(undefined) : fetchTicket(this.ticketUrl)).then((ticket) => {
      this.opening = false;
      // Everyone left (or close() came) while the ticket was on its way.
      if (!this.inUse()) return this.setState('closed');
      // Opened without, the socket would speak for nobody and its jobs be refused for good.
      if (ticket === UNAVAILABLE) return this.scheduleReconnect();
      if (sse) this.openStream();
      else this.open(ticket);
    });
  }

  /** Which transport the next connection uses: the option, else the page's configuration; `auto` takes SSE after sockets kept failing. */
  private usesSse(): boolean {
    const choice = this.transport ?? configuredTransport();
    if (this.eventsUrl === null || typeof fetch !== 'function') return false;
    return choice === 'sse' || (choice === 'auto' && (this.fellBack || !this.Socket));
  }

  private open(ticket: string | undefined): void {
    let socket: WebSocketLike;
    try {
      socket = new this.Socket!(this.url, ticket ? [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${ticket}`] : SUBPROTOCOL);
    } catch {
      // A malformed URL or a blocked port: treat like a failed attempt.
      this.scheduleReconnect();
      return;
    }
    this.streamJobs = new Set();
    this.attach(socket);
  }

  /** An SSE stream that subscribes the watched jobs in its own request, each resumed after its last seq (`Last-Event-ID`). */
  private openStream(): void {
    const jobs: StreamJob[] = [];
    for (const [job, watched] of this.jobs) {
      if (watched.refused || jobs.length >= MAX_STREAM_JOBS) continue;
      jobs.push({ job, after: watched.lastSeq, ...(watched.token ? { token: watched.token } : {}) });
    }
    this.streamJobs = new Set(jobs.map((job) => job.job));
    this.attach(new SseSocket(this.eventsUrl!, jobs));
  }

  private attach(socket: WebSocketLike): void {
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      opened = true;
      this.unopened = 0;
      this.attempts = 0;
      this.outbox.reset();
      this.setState('open');
      for (const [jobId, job] of this.jobs) {
        if (job.refused) continue;
        if (!this.streamJobs.has(jobId)) this.subscribe(jobId, job);
        else {
          // Subscribed by the stream's request: the next snapshot is this subscription's (it carries no ref).
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
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket || typeof event.data !== 'string') return;
      let message: ServerMessage;
      try {
        message = JSON.parse(event.data) as ServerMessage;
      } catch {
        return; // not from a BackJob server; nothing sensible to do with it
      }
      this.receive(message);
    };
    socket.onerror = () => {}; // a close event always follows, and carries the decision
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.outbox.reset(); // what waited is asked again on the next socket
      // Sockets that never open, again and again, while the server answers HTTP: a proxy refusing upgrades.
      if (!opened && !(socket instanceof SseSocket) && ++this.unopened >= WS_FAILURES_BEFORE_SSE && (this.transport ?? configuredTransport()) === 'auto') {
        this.fellBack = this.eventsUrl !== null && typeof fetch === 'function';
        if (this.fellBack) this.attempts = 0;
      }
      // A cancel already on the wire may or may not have happened: say so rather than guess.
      for (const pending of this.cancels.values()) {
        if (pending.sent) pending.reject(new BackjobConnectionError('BACKJOB_ERR_DISCONNECTED', 'Connection lost before the server answered'));
      }
      // A page on the wire is asked again on the next socket.
      for (const pending of this.pages.values()) pending.sent = false;
      if (this.inUse()) this.scheduleReconnect();
      else this.setState('closed');
    };
  }

  private scheduleReconnect(): void {
    this.setState('reconnecting');
    const delay = this.backoff(this.minBackoff, this.attempts);
    this.attempts += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.inUse()) this.connect();
      else this.setState('closed');
    }, delay);
  }

  /** The delay before retry number `attempt` (from 0): `base` doubling up to `maxBackoff`. */
  private backoff(base: number, attempt: number): number {
    const ceiling = Math.min(this.maxBackoff, base * 2 ** attempt);
    // Full-range jitter in the upper half: a server restart is not greeted by every page at the same instant.
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  }

  /**
   * Drops a pending reconnect. The field must be emptied too: `connect()`
   * takes a set `reconnectTimer` to mean an attempt is already scheduled, and
   * would never open a socket again.
   */
  private cancelReconnect(): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
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

  /** Sends a message within the server's rate limit: at once while the budget allows, else in turn. */
  private send(message: object, sent?: () => void): void {
    if (!this.socket) return;
    this.outbox.push(JSON.stringify(message), sent);
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
        return this.outbox.greet(message.rateLimit);
    }
  }

  private onSnapshot(jobId: string, snapshot: JobSnapshot, reset: boolean): void {
    const job = this.jobs.get(jobId);
    if (!job) return;
    job.streaming = true;
    job.error = undefined;
    if (reset) {
      // The server lost the history we resumed from; it resends the log from the start.
      job.lines = [];
      job.lastSeq = 0;
      job.snapshot = snapshot;
      this.notify(job, { snapshot, reset: true });
      return;
    }
    // Events received since may already be ahead of a snapshot read a moment earlier.
    if (!job.snapshot || snapshot.seq >= job.snapshot.seq) job.snapshot = snapshot;
    this.notify(job, { snapshot: job.snapshot });
  }

  private onEvents(jobId: string, events: JobEvent[]): void {
    const job = this.jobs.get(jobId);
    if (!job?.streaming) return;
    const lines: JobEvent[] = [];
    for (const event of events) {
      if (event.seq <= job.lastSeq) continue; // already had it (a resubscribe racing a live event)
      job.lastSeq = event.seq;
      job.retries = 0; // the stream works again
      if (job.snapshot) job.snapshot = applyEvent(job.snapshot, event);
      if (event.type === 'job:log') lines.push(event);
    }
    if (lines.length > 0) {
      job.lines.push(...lines);
      if (job.lines.length > this.maxLines) job.lines.splice(0, job.lines.length - this.maxLines);
    }
    const update: WatchUpdate = {};
    if (job.snapshot) update.snapshot = job.snapshot;
    if (lines.length > 0) update.lines = lines;
    if (update.snapshot || update.lines) this.notify(job, update);
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
      job.retryTimer = setTimeout(() => this.socket?.readyState === OPEN && this.subscribe(jobId, job), this.backoff(RETRY_MS, job.retries++));
      return;
    }
    if (FINAL_ERRORS.has(message.code)) job.refused = true;
    job.error = { code: message.code, message: message.message };
    this.notify(job, { error: job.error });
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
      job.retryTimer = setTimeout(() => this.socket?.readyState === OPEN && this.subscribe(jobId, job), this.backoff(RETRY_MS, job.retries++));
    }
  }

  private setState(state: ConnectionState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    for (const job of this.jobs.values()) this.notify(job, { connection: state });
    for (const listener of this.lists) this.deliverList(listener, { connection: state });
  }

  private deliverList(listener: (update: ListUpdate) => void, update: ListUpdate): void {
    try {
      listener(update);
    } catch (error) {
      setTimeout(() => {
        throw error;
      });
    }
  }

  private notify(job: WatchedJob, update: WatchUpdate): void {
    for (const watcher of job.watchers) if (watcher.ready) this.deliver(watcher, update);
  }

  private deliver(watcher: Watcher, update: WatchUpdate): void {
    try {
      watcher.listener(update);
    } catch (error) {
      // One broken listener must not starve the others; surface it asynchronously.
      setTimeout(() => {
        throw error;
      });
    }
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
