/**
 * The Server-Sent Events transport, for networks that refuse WebSockets:
 *
 * - `GET {basePath}/events[?job=<id>&job=…]` opens a stream (`text/event-stream`).
 *   Jobs named in the query are subscribed at once (tokens in `X-Backjob-Token`,
 *   comma-separated in the same order, or `token=` per job), each resumed
 *   after the seq the `Last-Event-ID` header gives it (`<job>:<seq>`, several
 *   comma-separated). The first message is `hello` with the stream's id.
 * - `POST {basePath}/events/<stream>` sends one client message (the JSON the
 *   WebSocket takes in a frame); replies come on the stream.
 *
 * Every message is one `data:` line of the same JSON as a WebSocket frame;
 * `events` carry `id: <job>:<last seq>`. Same origin policy, principal
 * (`identify` on the request, which went through the app's middleware),
 * limits and backpressure as the WebSocket: one {@link LiveSession} per
 * stream. Framing and ids: docs/protocol.md.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_CLIENT_FRAME, PROTOCOLS } from '../../shared/protocol.js';
import { positiveOption as positive } from '../validate.js';
import type { LiveHost } from './host.js';
import { LiveSession } from './session.js';
import { LiveStreams, type Outgoing } from './streams.js';

/** A stream past this much unwritten data is not reading at all (only replies can get here): it is cut. */
const ABANDON_BYTES = 4 * 1024 * 1024;
/** Jobs a stream's query may name; more are subscribed by POST. */
export const MAX_QUERY_JOBS = 100;
/** Longest request target of a stream: jobs, tokens and a tenant's query fit well within it. */
const MAX_TARGET = 8 * 1024;
/** Longest `Last-Event-ID`: a cursor per query job. */
const MAX_LAST_EVENT_ID = MAX_QUERY_JOBS * 90;
const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;
const CURSOR = /^([A-Za-z0-9_-]{1,64}):(\d{1,15})$/;
const STREAM_ID = /^[A-Za-z0-9_-]{22}$/;

const DEFAULTS = { maxPayload: MAX_CLIENT_FRAME, rateLimit: 50, heartbeat: 15_000, maxStreams: 10_000 };

export interface SseOptions {
  /** Largest client message in bytes. Default 16 KiB. */
  maxPayload?: number;
  /** Client messages per second per stream. Default 50. */
  rateLimit?: number;
  /** Milliseconds between heartbeat comments (proxies close quiet responses). Default 15 s. */
  heartbeat?: number;
  /** Streams open at once on this process; more are answered 503. Default 10,000. */
  maxStreams?: number;
}

/** A framework-neutral handler: Express, Fastify's raw `req`/`res`, or `http.createServer` can mount it. */
export type RawHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

export interface SseTransport {
  /** Answers `GET {basePath}/events` and `POST {basePath}/events/<stream>`; anything else goes to `next` (or 404). */
  readonly handle: RawHandler;
  /** Open streams, their subscriptions, and the bytes waiting unwritten in their responses, for tests and monitoring. */
  stats(): { streams: number; subscriptions: number; bufferedBytes: number };
  /** Ends every stream. */
  close(): void;
}

interface Stream {
  readonly id: string;
  readonly res: ServerResponse;
  readonly session: LiveSession;
  waitingForDrain: boolean;
}

export function createSseTransport(host: LiveHost, options: SseOptions = {}): SseTransport {
  const limits = {
    maxPayload: positive('maxPayload', options.maxPayload ?? DEFAULTS.maxPayload),
    rateLimit: positive('rateLimit', options.rateLimit ?? DEFAULTS.rateLimit),
  };
  const heartbeat = positive('heartbeat', options.heartbeat ?? DEFAULTS.heartbeat);
  const maxStreams = positive('maxStreams', options.maxStreams ?? DEFAULTS.maxStreams);
  const base = `${host.options.basePath.replace(/\/$/, '')}/events`;
  const streams = new LiveStreams(host);
  const open = new Map<string, Stream>();
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  const beat = () => {
    for (const stream of open.values()) write(stream, ': \n\n');
  };

  function write(stream: Stream, chunk: string | Buffer): void {
    const { res } = stream;
    if (res.writableEnded || res.destroyed) return;
    if (res.writableLength > ABANDON_BYTES) return void res.destroy();
    const flushed = res.write(chunk);
    // Behind `compression()` a write waits in gzip's buffer until flushed.
    (res as { flush?: () => void }).flush?.();
    if (!flushed && !stream.waitingForDrain) {
      stream.waitingForDrain = true;
      res.once('drain', () => {
        stream.waitingForDrain = false;
        stream.session.drained();
      });
    }
  }

  async function openStream(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (closed) return fail(res, 503, 'BACKJOB_ERR_CLOSED', 'Server closing');
    if (open.size >= maxStreams) return fail(res, 503, 'BACKJOB_ERR_TOO_MANY_STREAMS', 'Too many live streams: try again later', 5);
    const initial = initialJobs(req, url);
    if (typeof initial === 'string') return fail(res, 400, 'BACKJOB_ERR_INVALID', initial);
    const principal = await host.identify(req);
    if (res.destroyed || closed) return;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // nginx and kin buffer responses unless told otherwise: a live stream must not wait in them.
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    const id = randomBytes(16).toString('base64url');
    const version = PROTOCOLS.find((p) => String(p.version) === url.searchParams.get('v'))?.version ?? 1;
    const framer = EVENT_FRAMES.get(version)!;
    const stream: Stream = {
      id,
      res,
      waitingForDrain: false,
      session: new LiveSession(
        host,
        streams,
        principal,
        {
          buffered: () => res.writableLength,
          get open() {
            return !res.writableEnded && !res.destroyed;
          },
          write: (out) => write(stream, out.frame(framer)),
          ban: () => res.end(),
        },
        limits,
      ),
    };
    open.set(id, stream);
    timer ??= setInterval(beat, heartbeat);
    timer.unref();
    res.on('close', () => {
      open.delete(id);
      stream.session.close();
      if (open.size === 0 && timer) {
        clearInterval(timer);
        timer = null;
      }
    });
    // `retry`: how long a browser's EventSource waits before it reconnects by itself.
    write(stream, 'retry: 2000\n\n');
    stream.session.send({ type: 'hello', version, time: Date.now(), rateLimit: limits.rateLimit, stream: id, heartbeat });
    for (const job of initial) stream.session.submit({ type: 'subscribe', job: job.id, token: job.token, after: job.after });
  }

  async function post(req: IncomingMessage, res: ServerResponse, streamId: string): Promise<void> {
    if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
      return fail(res, 415, 'BACKJOB_ERR_UNSUPPORTED_MEDIA_TYPE', 'Expected Content-Type: application/json');
    }
    const body = await readBody(req, limits.maxPayload);
    if (body === null) return fail(res, 413, 'BACKJOB_ERR_TOO_LARGE', `Messages are limited to ${limits.maxPayload} bytes`, undefined, true);
    const stream = STREAM_ID.test(streamId) ? open.get(streamId) : undefined;
    // The stream id is known only to its reader; the principal must match too, so a leaked id alone drives nothing.
    if (!stream || (await host.identify(req)) !== stream.session.principal || !open.has(streamId)) {
      return fail(res, 404, 'BACKJOB_ERR_NOT_FOUND', 'No such stream: open a new one');
    }
    const verdict = stream.session.receive(Buffer.byteLength(body), () => body);
    if (verdict === 'limited') return fail(res, 429, 'BACKJOB_ERR_RATE_LIMITED', `More than ${limits.rateLimit} messages per second`, 1);
    res.writeHead(202, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end('{}');
  }

  const handle: RawHandler = (req, res, next) => {
    try {
      route(req, res, next);
    } catch {
      fail(res, 400, 'BACKJOB_ERR_INVALID', 'Bad request');
    }
  };

  function route(req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void {
    const target = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    const path = target.split('?', 1)[0]!;
    const isStream = path === base;
    const isPost = path.startsWith(`${base}/`) && path.indexOf('/', base.length + 1) === -1;
    if (!isStream && !isPost) return next ? next() : void fail(res, 404, 'BACKJOB_ERR_NOT_FOUND', 'Not found');
    if (target.length > MAX_TARGET) return fail(res, 414, 'BACKJOB_ERR_TOO_LARGE', `Request targets are limited to ${MAX_TARGET} bytes`);
    const refusal = originRefusal(host, req);
    if (refusal) return fail(res, 403, 'BACKJOB_ERR_CROSS_ORIGIN', refusal);
    const method = req.method ?? 'GET';
    // A page on another allowed origin (`allowedOrigins`) reads the stream across origins, with its
    // credentials and headers (tokens, Last-Event-ID): CORS lets exactly those origins, nobody else.
    const origin = req.headers.origin;
    if (origin !== undefined) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('vary', 'Origin');
      if (method === 'OPTIONS') {
        const asked = req.headers['access-control-request-headers'];
        res.writeHead(204, {
          'access-control-allow-methods': isStream ? 'GET' : 'POST',
          'access-control-max-age': '600',
          ...(asked ? { 'access-control-allow-headers': asked } : {}),
        });
        return void res.end();
      }
    }
    const work = isStream
      ? method === 'GET'
        ? openStream(req, res, new URL(target, 'http://x'))
        : Promise.resolve(fail(res, 405, 'BACKJOB_ERR_METHOD_NOT_ALLOWED', 'Expected GET', undefined, false, 'GET'))
      : method === 'POST'
        ? post(req, res, path.slice(base.length + 1))
        : Promise.resolve(fail(res, 405, 'BACKJOB_ERR_METHOD_NOT_ALLOWED', 'Expected POST', undefined, false, 'POST'));
    work.catch(() => fail(res, 500, 'BACKJOB_ERR_INTERNAL', 'Internal error'));
  }

  return {
    handle,
    stats: () => {
      let subscriptions = 0;
      let bufferedBytes = 0;
      for (const stream of open.values()) {
        subscriptions += stream.session.subscriptions.size;
        bufferedBytes += stream.res.writableLength;
      }
      return { streams: open.size, subscriptions, bufferedBytes };
    },
    close() {
      closed = true;
      for (const stream of open.values()) stream.res.end();
      streams.close();
    },
  };
}

/** One message as an SSE event of protocol `version`: `events` carry the cursor `<job>:<seq>` of their last event as their id. */
const eventFrame = (version: number) => (out: Outgoing): Buffer => {
  const { message } = out;
  const last = message.type === 'events' ? message.events.at(-1) : undefined;
  return Buffer.from(`${last ? `id: ${last.jobId}:${last.seq}\n` : ''}data: ${out.json(version)}\n\n`);
};
/** The framer of each protocol version a stream may ask for (`v=2`; none, or one not spoken: version 1, as the first clients sent). */
const EVENT_FRAMES = new Map(PROTOCOLS.map(({ version }) => [version, eventFrame(version)]));

/** The query's jobs with their tokens and the seq `Last-Event-ID` resumes each after, or why they are not valid. */
function initialJobs(req: IncomingMessage, url: URL): Array<{ id: string; token?: string; after?: number }> | string {
  const ids = url.searchParams.getAll('job');
  if (ids.length > MAX_QUERY_JOBS) return `At most ${MAX_QUERY_JOBS} jobs in the query: subscribe to more by POST`;
  if (!ids.every((id) => JOB_ID.test(id))) return 'Expected every `job` to be a job id';
  const header = req.headers['x-backjob-token'];
  const tokens = typeof header === 'string' ? header.split(',').map((t) => t.trim()) : url.searchParams.getAll('token');
  if (tokens.some((t) => t.length > 128)) return 'Expected every token to be a watch token';
  const after = new Map<string, number>();
  const lastEventId = req.headers['last-event-id'];
  if (typeof lastEventId === 'string' && lastEventId.trim() !== '') {
    if (lastEventId.length > MAX_LAST_EVENT_ID) return 'Last-Event-ID is too long';
    for (const part of lastEventId.split(',')) {
      const match = CURSOR.exec(part.trim());
      if (!match || !Number.isSafeInteger(Number(match[2]))) return 'Expected Last-Event-ID to be `<job>:<seq>` cursors, comma-separated';
      after.set(match[1]!, Math.max(after.get(match[1]!) ?? 0, Number(match[2])));
    }
  }
  return [...new Set(ids)].map((id) => {
    const i = ids.indexOf(id);
    return { id, ...(tokens[i] ? { token: tokens[i] } : {}), ...(after.has(id) ? { after: after.get(id) } : {}) };
  });
}

/**
 * The origin policy of the HTTP API: a browser names the page's origin on
 * every cross-origin request (and on same-origin POSTs); one the policy does
 * not allow is refused. Without Origin, a browser saying another site sent it is refused too.
 */
function originRefusal(host: LiveHost, req: IncomingMessage): string | null {
  const origin = req.headers.origin;
  if (origin === undefined) return req.headers['sec-fetch-site'] === 'cross-site' ? 'Cross-site requests are refused' : null;
  return host.originAllowed(origin, req) ? null : `Requests from origin ${origin.slice(0, 200)} are refused`;
}

/** The request body as text, or null past `limit` bytes. A body an app's own parser already read is taken from `req.body`. */
async function readBody(req: IncomingMessage, limit: number): Promise<string | null> {
  const parsed = (req as { body?: unknown }).body;
  if (parsed !== undefined && req.readableEnded) {
    const text = typeof parsed === 'string' ? parsed : Buffer.isBuffer(parsed) ? parsed.toString() : JSON.stringify(parsed);
    return Buffer.byteLength(text) > limit ? null : text;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString();
}

/** An error reply in the HTTP API's shape, `{ error: { code, message } }`. */
function fail(res: ServerResponse, status: number, code: string, message: string, retryAfter?: number, close = false, allow?: string): void {
  if (res.headersSent || res.destroyed) return void (res.headersSent && res.end());
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
    ...(retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) }),
    ...(allow === undefined ? {} : { allow }),
    // A body left unread past the limit is not drained: the connection goes with it.
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(body);
}
