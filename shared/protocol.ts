/**
 * The job event model and the live wire protocol (WebSocket and SSE), shared by the server
 * and the browser client. This module must stay free of Node and DOM APIs so
 * that both sides (and SSR) can import it.
 *
 * A job is an ordered log of events; its state is the fold of that log
 * ({@link applyEvent}). The same fold runs in the store (to keep the job row
 * current), in the hub (snapshots) and in the browser (elements).
 */

/** Wire protocol version, negotiated as the WebSocket subprotocol `backjob.v1`. */
export const PROTOCOL_VERSION = 1;
export const SUBPROTOCOL = `backjob.v${PROTOCOL_VERSION}`;

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

export type JobStatus = 'waiting' | 'running' | 'completed' | 'failed' | 'canceled';
export type EndStatus = 'completed' | 'failed' | 'canceled';

export const END_STATUSES: readonly EndStatus[] = ['completed', 'failed', 'canceled'];
/** Every status, in lifecycle order. */
export const JOB_STATUSES: readonly JobStatus[] = ['waiting', 'running', ...END_STATUSES];

export function isEnded(status: JobStatus): status is EndStatus {
  return status === 'completed' || status === 'failed' || status === 'canceled';
}

/** The events that end a job: after one, nothing is stored for the job (ended is final). */
export type EndEventData = Extract<JobEventData, { type: 'job:completed' | 'job:failed' | 'job:canceled' }>;

/** Whether `event` ends its job (the one test for it, on stored events and payloads alike). */
export function isEndEvent<E extends { type: string }>(event: E | undefined): event is E & EndEventData {
  return event !== undefined && (event.type === 'job:completed' || event.type === 'job:failed' || event.type === 'job:canceled');
}

/** A job id, as the server makes them (nanoid) and every door accepts them. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * A job name (`define(name)`, `POST /jobs { name }`): 1 to 200 characters,
 * no whitespace or control characters, since names show in logs, URLs and
 * `METHOD /path` names of route jobs, where a space would read as a separator.
 */
export const JOB_NAME_PATTERN = /^[^\s\u0000-\u001f]{1,200}$/;

export function isJobId(value: unknown): value is string {
  return typeof value === 'string' && JOB_ID_PATTERN.test(value);
}

export function isJobName(value: unknown): value is string {
  return typeof value === 'string' && JOB_NAME_PATTERN.test(value);
}

/** The payload of one job event, before the store numbers it. */
export type JobEventData =
  /** The job exists and waits (queued or delayed). Always seq 1. */
  | { type: 'job:created' }
  /** A worker picked the job up. `attempt` counts from 1; a retry after a crash starts again. */
  | { type: 'job:start'; attempt: number }
  /** Progress 0–100, or `null` for indeterminate; `text` replaces the status text when present. */
  | { type: 'job:progress'; progress?: number | null; text?: string }
  /** One line of output. */
  | { type: 'job:log'; line: string }
  | { type: 'job:completed'; result?: unknown }
  /** `code` is machine-readable (`BACKJOB_ERR_STALLED`, `BACKJOB_ERR_HTTP_403`, …). */
  | { type: 'job:failed'; reason: string; code?: string }
  | { type: 'job:canceled'; reason: string }
  /**
   * The job's named steps, declared once (a later declaration replaces them):
   * each starts `waiting`. From then on the job's progress is derived from its
   * steps (see {@link derivedProgress}).
   */
  | { type: 'job:steps'; steps: StepDeclaration[] }
  /**
   * A step moved: `state` (default `running`), its own progress 0–100 (or
   * `null`), its status text. A step that starts running completes every earlier
   * step still waiting or running.
   */
  | { type: 'job:step'; name: string; state?: StepState; progress?: number | null; text?: string }
  /**
   * What the job's parent (or batch) shows of one child: written on the
   * parent's log when the child is spawned and whenever it progresses or
   * ends (coalesced), so one subscription to the parent follows the family.
   */
  | { type: 'job:child'; child: ChildSnapshot };

export type JobEventType = JobEventData['type'];

/** A stored event: numbered per job from 1, without gaps, in the order it happened. */
export type JobEvent = JobEventData & {
  jobId: string;
  seq: number;
  /** Milliseconds since the epoch. */
  at: number;
};

export type StepState = 'waiting' | 'running' | 'completed' | 'failed' | 'skipped';

/** A step as a job declares it: `name` addresses it, `title` labels it (default: the name), `weight` (default 1) is its share of the job's progress. */
export interface StepDeclaration {
  name: string;
  title?: string;
  weight?: number;
}

/** A step as watchers see it. */
export interface StepSnapshot {
  name: string;
  title?: string;
  weight: number;
  state: StepState;
  /** The step's own progress, 0–100, or `null` while indeterminate. */
  progress: number | null;
}

/** One child job (or batch member) as its parent's snapshot shows it. */
export interface ChildSnapshot {
  id: string;
  name: string;
  title?: string;
  /** Share of the parent's progress (default 1). */
  weight: number;
  status: JobStatus;
  progress: number | null;
  text?: string;
  errorCode?: string;
}

/**
 * What anyone allowed to watch a job may see of it. Owner, credentials and
 * merge keys never leave the server.
 */
export interface JobSnapshot {
  id: string;
  /** Handler name, or `METHOD /path` for a route job: an address, not a label. */
  name: string;
  /** What people call the job ("Quarterly report"), when `define` gave it a `title`. */
  title?: string;
  status: JobStatus;
  /** 0–100, or `null` while indeterminate. */
  progress: number | null;
  text: string;
  result?: unknown;
  /** Failure or cancel reason. */
  error?: string;
  errorCode?: string;
  createdAt: number;
  startedAt?: number;
  endedAt?: number;
  /** Seq of the last event folded into this snapshot. */
  seq: number;
  /** Log lines stored so far. */
  logLines: number;
  attempt: number;
  /** The job's named steps, in order, when it declared any. */
  steps?: StepSnapshot[];
  /** The job's children (or a batch's members), in the order they were spawned. */
  children?: ChildSnapshot[];
  /** The parent job (or batch), when this job is a child (or a member). */
  parent?: string;
  /** True for a batch: a job made by `start([...])` whose only work is its members. */
  batch?: true;
}

/** A fresh snapshot, as of the `job:created` event. */
export function initialSnapshot(id: string, name: string, createdAt: number): JobSnapshot {
  return { id, name, status: 'waiting', progress: 0, text: '', createdAt, seq: 0, logLines: 0, attempt: 0 };
}

/**
 * Folds one event into a snapshot, returning a new one. Events after an end
 * state change nothing (ended is final); events at or below `snapshot.seq`
 * are already folded and are ignored, so replaying is harmless.
 */
export function applyEvent(snapshot: JobSnapshot, event: JobEvent): JobSnapshot {
  if (event.seq <= snapshot.seq || isEnded(snapshot.status)) return snapshot;
  return foldEvent({ ...snapshot }, event);
}

/**
 * The fold of {@link applyEvent} on a snapshot the caller owns: changes and
 * returns `next` itself. The caller has checked that the event is the next
 * one (`event.seq > next.seq`) and the job has not ended. A store folding a
 * run of events copies its row once and folds them all into that copy,
 * rather than copying it per event.
 */
export function foldEvent<S extends JobSnapshot>(next: S, event: JobEvent): S {
  next.seq = event.seq;
  switch (event.type) {
    case 'job:created':
      next.status = 'waiting';
      break;
    case 'job:start':
      next.status = 'running';
      next.attempt = event.attempt;
      next.startedAt ??= event.at;
      break;
    case 'job:progress':
      if (event.progress !== undefined) next.progress = event.progress;
      if (event.text !== undefined) next.text = event.text;
      break;
    case 'job:log':
      next.logLines += 1;
      break;
    case 'job:completed':
      next.status = 'completed';
      next.progress = 100;
      next.result = event.result;
      next.endedAt = event.at;
      break;
    case 'job:failed':
      next.status = 'failed';
      next.error = event.reason;
      if (event.code) next.errorCode = event.code;
      next.endedAt = event.at;
      break;
    case 'job:canceled':
      next.status = 'canceled';
      next.error = event.reason;
      next.endedAt = event.at;
      break;
    case 'job:steps':
      next.steps = event.steps.map((step) => ({
        name: step.name,
        ...(step.title === undefined ? {} : { title: step.title }),
        weight: step.weight ?? 1,
        state: 'waiting',
        progress: null,
      }));
      next.progress = derivedProgress(next);
      break;
    case 'job:step': {
      const at = next.steps?.findIndex((step) => step.name === event.name) ?? -1;
      if (at < 0) break;
      const state = event.state ?? 'running';
      next.steps = next.steps!.map((step, i) => {
        if (i === at) return { ...step, state, progress: event.progress === undefined ? step.progress : event.progress };
        if (i < at && state === 'running' && (step.state === 'waiting' || step.state === 'running')) return { ...step, state: 'completed' };
        return step;
      });
      if (event.text !== undefined) next.text = event.text;
      next.progress = derivedProgress(next);
      break;
    }
    case 'job:child': {
      const children = next.children ? [...next.children] : [];
      const at = children.findIndex((child) => child.id === event.child.id);
      // Ended is final for a child too: news of it written late (by another process) cannot revive it.
      if (at >= 0 && isEnded(children[at]!.status)) break;
      if (at < 0) children.push(event.child);
      else children[at] = event.child;
      next.children = children;
      next.progress = derivedProgress(next);
      break;
    }
  }
  return next;
}

/** What a finished part counts for in its parent's progress: done is done, however it ended. */
function partDone(state: StepState | JobStatus): boolean {
  return state === 'completed' || state === 'skipped' || state === 'failed' || state === 'canceled';
}

/**
 * A job's progress from its parts: the weighted mean of its steps (a step
 * done counts 100, a running one its own progress), or else of its children.
 * `null` (indeterminate) while nothing is known; the job's own progress when
 * it has no parts.
 */
export function derivedProgress(snapshot: Pick<JobSnapshot, 'progress' | 'steps' | 'children'>): number | null {
  const parts = snapshot.steps?.length
    ? snapshot.steps.map((step) => ({ weight: step.weight, done: partDone(step.state), progress: step.state === 'running' ? step.progress : 0 }))
    : snapshot.children?.length
      ? snapshot.children.map((child) => ({ weight: child.weight, done: partDone(child.status), progress: child.progress }))
      : null;
  if (!parts) return snapshot.progress;
  let total = 0;
  let sum = 0;
  for (const part of parts) {
    total += part.weight;
    sum += part.weight * (part.done ? 100 : (part.progress ?? 0));
  }
  return total > 0 ? Math.round((sum / total) * 100) / 100 : 0;
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
