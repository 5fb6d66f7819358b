/**
 * The live wire protocol (WebSocket and SSE) and the HTTP API's shapes, shared
 * by the server and the browser client, with the job event model they carry
 * (shared/jobs.ts, re-exported here). Free of Node and DOM APIs, so that both
 * sides (and SSR) can import it.
 */
import { JOB_ID_PATTERN, JOB_STATUSES, type JobEvent, type JobEventData, type JobSnapshot, type JobStatus } from './jobs.js';

export * from './jobs.js';

/**
 * Wire protocol version, negotiated as the WebSocket subprotocol `backjob.v2`
 * (on SSE, by `v=2` in the stream's query). Version 2 sends `events` packed
 * (see {@link PackedEvents}); a server still speaks version 1, with every
 * event whole, to a client that offers only `backjob.v1` (a page loaded before
 * an upgrade).
 */
export const PROTOCOL_VERSION = 2;
export const SUBPROTOCOL = `backjob.v${PROTOCOL_VERSION}`;
/** The first version's subprotocol, which servers still accept. */
export const SUBPROTOCOL_V1 = 'backjob.v1';
/**
 * Every version spoken, newest first, with its subprotocol: what a client
 * offers and a server accepts (the newest both speak wins).
 */
export const PROTOCOLS: ReadonlyArray<{ readonly version: number; readonly subprotocol: string }> = [
  { version: PROTOCOL_VERSION, subprotocol: SUBPROTOCOL },
  { version: 1, subprotocol: SUBPROTOCOL_V1 },
];

/**
 * A connection ticket travels as a second offered subprotocol,
 * `backjob.ticket.<ticket>`, beside `backjob.v1`: a browser can set no
 * header on a WebSocket, and unlike the URL no access log keeps it. The
 * server answers with `backjob.v1` alone.
 */
export const TICKET_PROTOCOL_PREFIX = 'backjob.ticket.';

/**
 * Longest ticket either side accepts: room for a principal of about 3 KB
 * (user ids of 300 characters and more exist), while a handshake's header
 * stays far below Node's 16 KB and nothing large is ever unsealed.
 */
export const MAX_TICKET_LENGTH = 4096;

/** Reply of `POST {basePath}/tickets`: a single-use ticket for the next socket, valid `expiresIn` ms. */
export interface TicketReply {
  ticket: string;
  expiresIn: number;
}

// ───────────────────────────── wire messages ─────────────────────────────

/** Largest client frame the hub accepts, in bytes. */
export const MAX_CLIENT_FRAME = 16 * 1024;

/** Client → server. `ref` is echoed in replies so a client can match errors to requests. */
export type ClientMessage =
  /**
   * Watch a job. `after` is the last seq the client has seen (0 or absent: from
   * the start). The server replies with a snapshot, then every event after
   * `after`, then live events.
   */
  | { type: 'subscribe'; ref?: string; job: string; token?: string; after?: number }
  | { type: 'unsubscribe'; ref?: string; job: string }
  | { type: 'cancel'; ref?: string; job: string; token?: string }
  /**
   * Watch the socket's own jobs (its principal's; never anyone else's):
   * the server replies with a `list` page, newest first, `limit` per page
   * (1–100, default 20), of the given statuses (default all), after
   * `before` (the `next` of an earlier page); then `list:changed` whenever
   * any of the principal's jobs is created, progresses or ends. One list per
   * socket: a new `list` replaces it.
   */
  | { type: 'list'; ref?: string; status?: JobStatus[]; limit?: number; before?: string }
  | { type: 'unlist'; ref?: string };

/** Server → client. */
export type ServerMessage =
  /**
   * Sent once the socket is open. `time` is the server's clock (ms since the
   * epoch) when it was sent, so a client can show durations measured from the
   * snapshots' timestamps even when the browser's clock is off. Older servers
   * omit it: take the offset as 0. `rateLimit` is how many messages per
   * second this socket may send (a token bucket, so bursts up to that many
   * pass); frames past it are dropped unread, and a socket that keeps on is
   * closed with 1008. Older servers omit it: assume 50. On an SSE stream,
   * `stream` is the id its POSTs go to (`{basePath}/events/<stream>`) and
   * `heartbeat` the milliseconds between the server's heartbeat comments.
   */
  | { type: 'hello'; version: number; time?: number; rateLimit?: number; stream?: string; heartbeat?: number }
  /**
   * The job's state as of `snapshot.seq`. `reset: true` means the history the
   * client asked to resume from is gone: drop what you have and start over
   * from this snapshot.
   */
  | { type: 'snapshot'; ref?: string; job: string; snapshot: JobSnapshot; reset?: boolean }
  /**
   * Events in seq order. Seqs can skip progress events that were coalesced for a
   * slow socket; log and end events are never skipped.
   */
  | { type: 'events'; job: string; events: JobEvent[] }
  | { type: 'canceled'; ref?: string; job: string }
  /** A page of the socket's own jobs; `next` is the cursor of the page after it, absent on the last. */
  | { type: 'list'; ref?: string; jobs: JobSnapshot[]; next?: string }
  /**
   * The principal's jobs that were created, progressed or ended since the
   * last push (a few per second at most), whatever the list's filter: a page
   * adds a new one, updates one it shows, or drops one no longer matching.
   */
  | { type: 'list:changed'; jobs: JobSnapshot[] }
  | { type: 'error'; ref?: string; job?: string; code: ErrorCode; message: string };

// ───────────────────────────── packed events ─────────────────────────────

/**
 * An `events` message as version 2 sends it. The events of one commit share
 * their job and their `at`, and their seqs follow one another, so each entry
 * leaves out what it shares with the one before it: `jobId` always (the
 * message's `job`); `seq` when it is the previous one's + 1 (before the first:
 * the message's `seq` − 1); `at` when it is the previous one's (before the
 * first: the message's `at`). A log line with nothing else left is the bare
 * string. A flood's page of log lines is then an array of strings: about half
 * the bytes, and several times cheaper to serialize and to parse than as
 * objects, on the server and in every watcher.
 */
export interface PackedEvents {
  type: 'events';
  job: string;
  seq: number;
  at: number;
  events: Array<string | PackedEvent>;
}

/** One entry of {@link PackedEvents} that is not a bare log line. */
export type PackedEvent = JobEventData & { seq?: number; at?: number };

/** `events` (of `job`, in seq order, at least one) as version 2 sends them. */
export function packEvents(job: string, events: readonly JobEvent[]): PackedEvents {
  const first = events[0]!;
  let seq = first.seq - 1;
  let at = first.at;
  const packed = new Array<string | PackedEvent>(events.length);
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    if (event.type === 'job:log' && event.seq === seq + 1 && event.at === at) packed[i] = event.line;
    else {
      const { jobId: _jobId, seq: eventSeq, at: eventAt, ...data } = event;
      const entry: PackedEvent = data;
      if (eventSeq !== seq + 1) entry.seq = eventSeq;
      if (eventAt !== at) entry.at = eventAt;
      packed[i] = entry;
    }
    seq = event.seq;
    at = event.at;
  }
  return { type: 'events', job, seq: first.seq, at: first.at, events: packed };
}

/**
 * The events of an `events` message of either version, whole. Version 1's
 * (no `seq` on the message) are whole already; version 2's are completed in
 * place (the message is the parser's own, and read once). Entries of no known
 * shape are skipped, so a message from something that is not a BackJob
 * server costs nothing worse than events the fold ignores.
 */
export function unpackEvents(message: { job: string; seq?: unknown; at?: unknown; events?: unknown }): JobEvent[] {
  const entries: unknown[] = Array.isArray(message.events) ? message.events : [];
  if (typeof message.seq !== 'number') return entries as JobEvent[];
  const jobId = message.job;
  let seq = message.seq - 1;
  let at = typeof message.at === 'number' ? message.at : 0;
  const events: JobEvent[] = [];
  for (const entry of entries) {
    if (typeof entry === 'string') {
      events.push({ type: 'job:log', line: entry, jobId, seq: ++seq, at });
    } else if (typeof entry === 'object' && entry !== null && !Array.isArray(entry)) {
      // Completed in place: the entry is the parser's fresh object (a copy by spread cost twice the parse).
      const event = entry as PackedEvent & { jobId: string };
      seq = typeof event.seq === 'number' ? event.seq : seq + 1;
      if (typeof event.at === 'number') at = event.at;
      event.jobId = jobId;
      event.seq = seq;
      event.at = at;
      events.push(event as JobEvent);
    }
  }
  return events;
}

/**
 * Parses one server message of either version, with its `events` whole
 * ({@link unpackEvents}): what clients read frames with. Throws on text that
 * is not a JSON object.
 */
export function readServerMessage(raw: string): ServerMessage {
  const message = JSON.parse(raw) as ServerMessage | PackedEvents | null;
  if (typeof message !== 'object' || message === null) throw new TypeError('Expected a JSON object');
  if (message.type !== 'events') return message as ServerMessage;
  return { type: 'events', job: message.job, events: unpackEvents(message) };
}

/**
 * The codes an `error` message of the live channel carries: a subset of the
 * server's one error registry (`ERRORS` in server/errors.ts, which checks at
 * compile time that each of these is registered there, with its meaning).
 */
export type ErrorCode =
  | 'BACKJOB_ERR_BAD_FRAME'
  | 'BACKJOB_ERR_TOO_LARGE'
  | 'BACKJOB_ERR_RATE_LIMITED'
  /** The socket already watches as many jobs as the server allows (1,000): final, not worth a retry. */
  | 'BACKJOB_ERR_TOO_MANY_JOBS'
  | 'BACKJOB_ERR_UNKNOWN_TYPE'
  | 'BACKJOB_ERR_FORBIDDEN'
  | 'BACKJOB_ERR_NOT_FOUND'
  | 'BACKJOB_ERR_ENDED'
  /** A `list` from a socket that speaks for nobody: there are no "own jobs" to show. */
  | 'BACKJOB_ERR_UNAUTHORIZED'
  | 'BACKJOB_ERR_INTERNAL';

/** Names a client's value in an error without serializing it: a hostile value may be huge or nested past any stack. */
function describeType(value: unknown): string {
  if (typeof value === 'string') return value.length <= 32 && /^[\w:-]*$/.test(value) ? `"${value}"` : 'a string';
  if (value === null) return 'null';
  return Array.isArray(value) ? 'an array' : typeof value;
}

/**
 * Parses and schema-checks one client frame. Returns the message, or an
 * error reply to send back. Never throws, for any input: nothing here walks
 * the client's value recursively (JSON.parse itself is iterative), so no
 * nesting the frame size allows can exhaust the stack.
 */
export function parseClientMessage(raw: string): ClientMessage | Extract<ServerMessage, { type: 'error' }> {
  try {
    return checkClientMessage(JSON.parse(raw));
  } catch {
    return { type: 'error', code: 'BACKJOB_ERR_BAD_FRAME', message: 'Expected a JSON object' };
  }
}

function checkClientMessage(value: unknown): ClientMessage | Extract<ServerMessage, { type: 'error' }> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { type: 'error', code: 'BACKJOB_ERR_BAD_FRAME', message: 'Expected a JSON object' };
  }
  const m = value as Record<string, unknown>;
  const ref = typeof m.ref === 'string' && m.ref.length <= 64 ? m.ref : undefined;
  const bad = (message: string) => ({ type: 'error', ref, code: 'BACKJOB_ERR_BAD_FRAME', message }) as const;
  if (m.type === 'list') return checkList(m, ref);
  if (m.type === 'unlist') return { type: 'unlist', ref };
  if (m.type !== 'subscribe' && m.type !== 'unsubscribe' && m.type !== 'cancel') {
    return { type: 'error', ref, code: 'BACKJOB_ERR_UNKNOWN_TYPE', message: `Unknown message type ${describeType(m.type)}` };
  }
  if (typeof m.job !== 'string' || !JOB_ID_PATTERN.test(m.job)) return bad('Expected `job` to be a job id');
  if (m.token !== undefined && (typeof m.token !== 'string' || m.token.length > 128)) {
    return bad('Expected `token` to be a string');
  }
  if (m.type === 'subscribe') {
    if (m.after !== undefined && !(Number.isSafeInteger(m.after) && (m.after as number) >= 0)) {
      return bad('Expected `after` to be a non-negative integer');
    }
    return { type: 'subscribe', ref, job: m.job, token: m.token as string | undefined, after: m.after as number | undefined };
  }
  if (m.type === 'cancel') return { type: 'cancel', ref, job: m.job, token: m.token as string | undefined };
  return { type: 'unsubscribe', ref, job: m.job };
}

/** Largest page of a `list`. */
export const MAX_LIST_PAGE = 100;

function checkList(m: Record<string, unknown>, ref: string | undefined): ClientMessage | Extract<ServerMessage, { type: 'error' }> {
  const bad = (message: string) => ({ type: 'error', ref, code: 'BACKJOB_ERR_BAD_FRAME', message }) as const;
  const { status, limit, before } = m;
  if (status !== undefined && !(Array.isArray(status) && status.length <= JOB_STATUSES.length && status.every((s) => JOB_STATUSES.includes(s as JobStatus)))) {
    return bad(`Expected \`status\` to be a list of ${JOB_STATUSES.join(', ')}`);
  }
  if (limit !== undefined && !(Number.isSafeInteger(limit) && (limit as number) >= 1 && (limit as number) <= MAX_LIST_PAGE)) {
    return bad(`Expected \`limit\` to be an integer from 1 to ${MAX_LIST_PAGE}`);
  }
  if (before !== undefined && !(typeof before === 'string' && parseListCursor(before))) return bad('Expected `before` to be the `next` of a page');
  const message: Extract<ClientMessage, { type: 'list' }> = { type: 'list', ref };
  if (status !== undefined) message.status = status as JobStatus[];
  if (limit !== undefined) message.limit = limit as number;
  if (before !== undefined) message.before = before as string;
  return message;
}

/** A list cursor, `<createdAt>.<id>` of a page's last job. */
export function listCursor(job: { createdAt: number; id: string }): string {
  return `${job.createdAt}.${job.id}`;
}

export function parseListCursor(cursor: string): { createdAt: number; id: string } | null {
  const match = /^(\d{1,15})\.([A-Za-z0-9_-]{1,64})$/.exec(cursor);
  return match ? { createdAt: Number(match[1]), id: match[2]! } : null;
}

// ───────────────────────────── HTTP API shapes ─────────────────────────────

/** Body of `POST /backjob/jobs`. Exactly one of `name`, `route` and `batch`. */
export interface StartRequest {
  name?: string;
  route?: string;
  method?: string;
  /** Handler params, or the route's query string. */
  params?: Record<string, unknown>;
  /** Route body (url-encoded unless `bodyType: 'json'`). */
  body?: Record<string, unknown>;
  bodyType?: 'form' | 'json';
  /**
   * Starts a batch instead of one job: one job (`batch: true`) whose members
   * are these, each started as its own request would start it, its progress
   * their weighted mean. Nothing else of this request but `title` goes with it.
   */
  batch?: BatchMember[];
  /** What the batch is called ("Export 40 files"); only with `batch`. */
  title?: string;
}

/** One job of a batch: what starts it alone, and its share of the batch's progress (`weight`, default 1). */
export type BatchMember = Omit<StartRequest, 'batch' | 'title'> & { weight?: number };

/** Reply of `POST /backjob/jobs` (202). `merged`: an identical job was already waiting or running. */
export interface StartReply {
  id: string;
  token: string;
  merged: boolean;
  snapshot: JobSnapshot;
}

/** Error body of every failing HTTP API call. */
export interface ErrorReply {
  error: { code: string; message: string };
}
