/**
 * Route dispatch: a job that runs one of the app's own routes, the way the
 * original BackJob for Yii does. The runner calls the app over HTTP at
 * `baseUrl` with a signed request (and, as-user, the starting request's
 * credentials); the app's route finds its job context on `req.backjob` and
 * whatever it writes to the response becomes the job's log.
 */
import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { cutLine } from '../core/context.js';
import { BackjobError } from '../errors.js';
import { invalid } from '../validate.js';
import { peekBody } from './peek-body.js';
import {
  JOB_HEADER,
  SIGNATURE_HEADER,
  SIGNATURE_WINDOW_SECONDS,
  bodyDigest,
  checkSignatureHeader,
  digest,
  seal,
  signRequest,
  unseal,
  verifyRequest,
} from '../access/signing.js';
import type { BackJobHost, JobContext, JobRecord, RouteTarget } from '../types.js';

/**
 * Headers of the starting request that go along with an as-user route job, as
 * they came: Cookie and Authorization make the route run as that user, Host
 * keeps virtual hosts working.
 */
const FORWARDED_HEADERS = ['cookie', 'authorization', 'host'] as const;
type ForwardedHeaders = Partial<Record<(typeof FORWARDED_HEADERS)[number] | 'x-forwarded-proto' | 'x-forwarded-host' | 'x-forwarded-for', string>>;

/**
 * The scheme, host and client address the app saw on the starting request,
 * as X-Forwarded headers: an app behind TLS or a proxy then sees in the job's
 * request what it saw in the user's (absolute URLs, secure-cookie checks,
 * audit logs). Express's view where there is one, which honours the app's
 * `trust proxy` setting; else the connection's own. Never the raw X-Forwarded
 * headers the user sent: the job's request comes from loopback, which an app
 * may trust, and would pass them off as its proxy's.
 */
function seenByApp(as: IncomingMessage): ForwardedHeaders {
  const viaExpress = as as IncomingMessage & { protocol?: unknown; host?: unknown; ip?: unknown };
  const socket = as.socket as (IncomingMessage['socket'] & { encrypted?: boolean }) | null;
  const proto = typeof viaExpress.protocol === 'string' ? viaExpress.protocol : socket?.encrypted ? 'https' : 'http';
  const host = typeof viaExpress.host === 'string' ? viaExpress.host : headerValue(as, 'host');
  const ip = typeof viaExpress.ip === 'string' ? viaExpress.ip : socket?.remoteAddress;
  return {
    'x-forwarded-proto': proto,
    ...(host ? { 'x-forwarded-host': host } : {}),
    ...(ip ? { 'x-forwarded-for': ip } : {}),
  };
}

const METHOD = /^[A-Z]{1,16}$/;
/**
 * Largest body of a route job, in bytes as sent. A job carries parameters, not
 * uploads; and the receiving side reads a signed request's body (to check its
 * digest) before the app's own parsers do, so it must not read more than they
 * would: a bigger body is not BackJob's.
 */
export const MAX_DISPATCH_BODY_BYTES = 64 * 1024;
/** Longest failure reason taken from a response body, in characters. */
const MAX_REASON_LENGTH = 500;
/** Bytes of an error response read to build the failure reason; the rest is discarded. */
const MAX_ERROR_BODY_BYTES = 16 * 1024;

/**
 * Checks a route target and brings it to the one form that is both sent and
 * signed: upper-case method, a percent-encoded path without dot segments.
 * Refuses anything that could address another host (`//evil.example`, `/\evil`).
 */
function normalizeTarget(target: RouteTarget): RouteTarget {
  const method = typeof target.method === 'string' ? target.method.toUpperCase() : '';
  if (!METHOD.test(method)) throw invalid(`Expected the route's \`method\` to be an HTTP method, got ${JSON.stringify(target.method)}`);
  if (typeof target.path !== 'string' || !target.path.startsWith('/') || /[?#]/.test(target.path)) {
    throw invalid(`Expected the route to be a path beginning with \`/\`, without query string, got ${JSON.stringify(target.path)}`);
  }
  // URL parsing would drop them silently, calling (and signing) another path than the one given.
  if (/[\u0000-\u001f\u007f]/.test(target.path)) {
    throw invalid(`Expected the route path to contain no control characters, got ${JSON.stringify(target.path)}`);
  }
  const probe = new URL(target.path, 'http://backjob.invalid');
  if (probe.origin !== 'http://backjob.invalid' || target.path.startsWith('//')) {
    throw invalid(`Expected the route to be a path of this app, got ${JSON.stringify(target.path)}`);
  }
  const bodyType = target.bodyType ?? 'form';
  if (bodyType !== 'form' && bodyType !== 'json') {
    throw invalid(`Expected \`bodyType\` to be "form" or "json", got ${JSON.stringify(target.bodyType)}`);
  }
  if (target.body !== undefined && (method === 'GET' || method === 'HEAD')) {
    throw invalid(`A ${method} request has no body: put the values in \`query\``);
  }
  const route: RouteTarget = { method, path: probe.pathname };
  if (target.query && Object.keys(target.query).length > 0) route.query = target.query;
  if (target.body !== undefined) {
    route.body = target.body;
    route.bodyType = bodyType;
    let size: number;
    try {
      size = encodeBody(route)!.bytes.length;
    } catch (error) {
      throw invalid(`Expected the route's \`body\` to be serializable, got an error: ${(error as Error).message}`);
    }
    if (size > MAX_DISPATCH_BODY_BYTES) {
      throw invalid(`Expected the route's \`body\` to take at most ${MAX_DISPATCH_BODY_BYTES} bytes as sent, got ${size}: pass a reference to large data, not the data`);
    }
  }
  return route;
}

/** The body a route job sends, as the bytes that are both sent and digested, with its type; none without a body. */
function encodeBody(route: RouteTarget): { bytes: Buffer; type: string } | undefined {
  if (route.body === undefined) return undefined;
  if (route.bodyType === 'json') return { bytes: Buffer.from(JSON.stringify(route.body)), type: 'application/json' };
  return { bytes: Buffer.from(formBody(route.body)), type: 'application/x-www-form-urlencoded' };
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * Turns a route spec and the starting request into what the job stores: the
 * checked target, and (as-user) the request's forwarded headers sealed with
 * the key (`credentials`) plus a keyed digest of its Cookie and Authorization
 * (`credentialsDigest`) so that merging tells two users apart without storing
 * anything that identifies them. Anonymous (`as` absent): nothing goes along.
 */
export function prepareRoute(
  backjob: BackJobHost,
  target: RouteTarget,
  as: IncomingMessage | undefined,
): { route: RouteTarget; credentials?: string; credentialsDigest?: string } {
  const route = normalizeTarget(target);
  if (!as) return { route };
  const forwarded: ForwardedHeaders = seenByApp(as);
  for (const name of FORWARDED_HEADERS) {
    const value = headerValue(as, name);
    if (value !== undefined) forwarded[name] = value;
  }
  const key = backjob.key();
  const identity = forwarded.cookie || forwarded.authorization ? JSON.stringify([forwarded.cookie ?? '', forwarded.authorization ?? '']) : undefined;
  return {
    route,
    credentials: seal(key, JSON.stringify(forwarded)),
    credentialsDigest: identity === undefined ? undefined : digest(key, identity),
  };
}

function queryString(query: RouteTarget['query']): string {
  if (!query) return '';
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    for (const item of Array.isArray(value) ? value : [value]) search.append(name, String(item));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** A form body as `URLSearchParams`: arrays repeat their key, objects travel as JSON, null/undefined are left out. */
function formBody(body: Record<string, unknown>): string {
  const form = new URLSearchParams();
  const add = (name: string, value: unknown) => {
    if (value === null || value === undefined) return;
    form.append(name, typeof value === 'object' ? JSON.stringify(value) : String(value));
  };
  for (const [name, value] of Object.entries(body)) {
    if (Array.isArray(value)) for (const item of value) add(name, item);
    else add(name, value);
  }
  return form.toString();
}

/** Text of an error page, short enough to be a reason: tags dropped, whitespace collapsed, cut with an ellipsis. */
function reasonText(body: string, contentType: string | undefined): string {
  let text = body;
  if (contentType?.includes('html')) {
    text = text.replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]*>/g, ' ');
    text = text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&nbsp;/g, ' ').replace(/&amp;/g, '&');
  }
  text = text.replace(/\s+/g, ' ').trim();
  return text.length > MAX_REASON_LENGTH ? `${text.slice(0, MAX_REASON_LENGTH - 1)}…` : text;
}

function httpFailure(status: number, statusMessage: string | undefined, detail: string): BackjobError {
  const head = `${status} ${statusMessage || http.STATUS_CODES[status] || ''}`.trim();
  return new BackjobError(`BACKJOB_ERR_HTTP_${status}`, detail ? `${head}: ${detail}` : head, { status: 502 });
}

/**
 * Runs a route job: sends the signed request to the app at `baseUrl` and
 * streams the response body into the job's log, line by line. Resolves when
 * the response ended with a 2xx status (the runner then completes the job,
 * unless the route already ended it through `req.backjob`). Rejects with a
 * `BackjobError` when it did not: a status ≥ 300 (redirects are not followed:
 * a redirect to a login page is a failure, not a success) with the status and
 * the response text as the reason and `BACKJOB_ERR_HTTP_<status>` as the code,
 * a connection error, or no known `baseUrl`. Aborting `ctx.signal` (cancel,
 * timeout, shutdown) aborts the request, which aborts the route's own signal.
 */
export async function runRoute(backjob: BackJobHost, job: JobRecord, ctx: JobContext): Promise<void> {
  const route = job.route;
  if (!route) throw new BackjobError('BACKJOB_ERR_INTERNAL', `Job ${job.id} is not a route job`);
  const key = backjob.key();
  // Taken once, first: whatever happens next, the credentials no longer sit in storage.
  const sealed = await backjob.backend.store.takeCredentials(job.id);
  const baseUrl = backjob.options.baseUrl;
  if (!baseUrl) {
    throw new BackjobError(
      'BACKJOB_ERR_NO_BASE_URL',
      "Route jobs need the app's address: set the `baseUrl` option (e.g. `http://127.0.0.1:3000`), or attach() the server, or let the app serve one request through backjob.router() first",
    );
  }
  const opened = sealed === null ? null : unseal(key, sealed);
  if (sealed !== null && opened === null) {
    throw new BackjobError('BACKJOB_ERR_CREDENTIALS', "The job's sealed credentials could not be opened (was the `key` changed?)");
  }
  const forwarded: ForwardedHeaders = opened === null ? {} : JSON.parse(opened);

  const headers: Record<string, string> = { ...forwarded, accept: 'text/plain, text/html;q=0.9, */*;q=0.8', 'user-agent': 'backjob' };
  const body = encodeBody(route);
  if (body) {
    headers['content-type'] = body.type;
    headers['content-length'] = String(body.bytes.length);
  }
  const base = new URL(baseUrl);
  const url = new URL(`${base.origin}${route.path}${queryString(route.query)}`);
  // Signed as it goes on the request line, and the body as the bytes that go after it.
  headers[JOB_HEADER] = job.id;
  const signed = { jobId: job.id, method: route.method, url: `${url.pathname}${url.search}`, bodyDigest: bodyDigest(body?.bytes) };
  headers[SIGNATURE_HEADER] = signRequest(key, signed);
  const transport = url.protocol === 'https:' ? https : http;
  // The name the app's certificate must carry: the configured host; for an address (a learned
  // baseUrl), the name the app is reached by: the user's Host, else the first one it served.
  const servername = hostnameOf(base.host) ?? hostnameOf(forwarded.host ?? servedHosts.get(backjob));

  await new Promise<void>((resolve, reject) => {
    const request = transport.request(url, { method: route.method, headers, signal: ctx.signal, ...(servername ? { servername } : {}) });
    const broken = (error: NodeJS.ErrnoException) => {
      if (ctx.signal.aborted) return reject(ctx.signal.reason);
      const why = error.code ? `${error.code}: ${error.message}` : error.message;
      reject(new BackjobError('BACKJOB_ERR_DISPATCH', `The app at ${base.origin} failed to answer ${route.method} ${route.path} (${why})`, { status: 502, cause: error }));
    };
    request.on('error', broken);
    request.on('response', (response) => {
      const decoder = decoderFor(response.headers['content-type']);
      // A response cut short (the app crashed mid-route, or we aborted on cancel) must settle the job too.
      response.on('error', broken);
      response.on('close', () => {
        if (!response.complete) broken(Object.assign(new Error('the response ended before it was complete'), { code: 'ECONNRESET' }));
      });
      const status = response.statusCode ?? 0;
      if (status >= 300) {
        let body = '';
        response.on('data', (chunk: Buffer) => {
          if (body.length < MAX_ERROR_BODY_BYTES) body += decoder.decode(chunk, { stream: true });
        });
        response.on('end', () => {
          const location = response.headers.location;
          const detail = status < 400 && location ? `redirected to ${location}` : reasonText(body, response.headers['content-type']);
          reject(httpFailure(status, response.statusMessage, detail));
        });
        return;
      }
      const lines = new LineCutter(backjob.options.maxLineLength, (line) => ctx.log(line));
      response.on('data', (chunk: Buffer) => lines.push(decoder.decode(chunk, { stream: true })));
      response.on('end', () => {
        lines.push(decoder.decode());
        lines.end();
        resolve();
      });
    });
    request.end(body?.bytes);
  });
}

/**
 * Splits a streamed body into lines (`\n` or `\r\n`) and keeps only the first
 * `max` characters of each while it streams: a body without newlines (a blob,
 * minified JSON) must neither pile up in memory nor be re-scanned whole at
 * every chunk. A longer line reaches `emit` cut, with the marker counting
 * every character it had.
 */
class LineCutter {
  private kept = '';
  private length = 0;
  private endsWithCR = false;

  constructor(
    private readonly max: number,
    private readonly emit: (line: string) => void,
  ) {}

  push(chunk: string): void {
    let start = 0;
    for (let newline = chunk.indexOf('\n'); newline !== -1; newline = chunk.indexOf('\n', start)) {
      this.take(chunk.slice(start, newline));
      this.flush();
      start = newline + 1;
    }
    this.take(chunk.slice(start));
  }

  /** The body ended: a last line without a newline is a line too. */
  end(): void {
    if (this.length > 0) this.flush();
  }

  private take(text: string): void {
    if (text === '') return;
    this.length += text.length;
    // One character more than fits, so a `\r` at exactly `max` can still be told from a longer line.
    if (this.kept.length <= this.max) this.kept += text.slice(0, this.max + 1 - this.kept.length);
    this.endsWithCR = text.endsWith('\r');
  }

  private flush(): void {
    let { kept, length } = this;
    if (this.endsWithCR) {
      length--;
      kept = kept.slice(0, length);
    }
    this.emit(cutLine(kept, this.max, length));
    this.kept = '';
    this.length = 0;
    this.endsWithCR = false;
  }
}


/** The Host of the first request each shim's app served (see `learnBaseUrl`). */
const servedHosts = new WeakMap<BackJobHost, string>();

/** Decodes a response in the charset its Content-Type names (UTF-8 when it names none, or one unknown). */
function decoderFor(contentType: string | undefined): TextDecoder {
  const charset = /;\s*charset="?([^";\s]+)/i.exec(contentType ?? '')?.[1];
  try {
    return new TextDecoder(charset ?? 'utf-8');
  } catch {
    return new TextDecoder('utf-8');
  }
}

/** The host name in a Host header, unless it is an address (TLS names no addresses). */
function hostnameOf(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name && isIP(name) === 0 ? name : undefined;
}

/** Claims a signature once (across processes where the backend can). */
async function claimSignature(backjob: BackJobHost, signature: string): Promise<boolean> {
  // A claim must outlive every moment the signature could still verify: the window on both sides of its timestamp.
  const ttlMs = 2 * SIGNATURE_WINDOW_SECONDS * 1000 + 1000;
  return backjob.claimOnce(`backjob:dispatch:${signature}`, ttlMs);
}

/**
 * The length of the body a signed request brought, when BackJob could have
 * sent it: none at all, or a Content-Length of at most
 * {@link MAX_DISPATCH_BODY_BYTES}. Null for anything else (chunked, too big,
 * malformed): BackJob sends neither, so it is not BackJob's, and nothing of it
 * is read.
 */
function dispatchedBodyLength(req: IncomingMessage): number | null {
  if (req.headers['transfer-encoding'] !== undefined) return null;
  const declared = req.headers['content-length'];
  if (declared === undefined) return 0;
  if (!/^\d{1,16}$/.test(declared)) return null;
  const length = Number(declared);
  return length <= MAX_DISPATCH_BODY_BYTES ? length : null;
}

/**
 * Middleware that recognises requests BackJob dispatched: a signature valid
 * for this job id, method, URL (path and query string, as on the request
 * line) and body, fresh, and not seen before. Such a request gets
 * `req.backjob`, the job's context, whose signal aborts when the dispatching
 * side goes away (cancel) and whose end ends the response. Any other request
 * passes as an ordinary one, its body untouched for the app's own parsers, and
 * the BackJob headers are stripped from every request so the app cannot be
 * fooled by them.
 *
 * It must run before anything reads the body: the body's digest is part of
 * what was signed. It reads the body only for a header that is well-formed and
 * fresh, and only up to {@link MAX_DISPATCH_BODY_BYTES}, and puts it back.
 *
 * What the route writes to the response reaches the log as the runner reads
 * it. A route that ends its job itself (`req.backjob.finish(result)`) should
 * report through `req.backjob.log`: response output still in flight when the
 * job ends arrives after the end, and ended is final.
 */
export function recognizeDispatch(backjob: BackJobHost): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    const signature = req.headers[SIGNATURE_HEADER];
    const jobId = req.headers[JOB_HEADER];
    delete req.headers[SIGNATURE_HEADER];
    delete req.headers[JOB_HEADER];
    if (typeof signature !== 'string' || typeof jobId !== 'string') return next();
    // The cheap checks first: a malformed or stale header, or a body BackJob would not send, costs no read.
    if (!checkSignatureHeader(signature).ok) return next();
    const length = dispatchedBodyLength(req);
    if (length === null) return next();
    const body = await peekBody(req, length);
    if (body === null) return next();
    await backjob.ready;
    // originalUrl: before a router mount point stripped its prefix from req.url.
    const signed = { jobId, method: req.method, url: req.originalUrl, bodyDigest: bodyDigest(body) };
    const verdict = verifyRequest(backjob.key(), signature, signed);
    if (!verdict.ok || !(await claimSignature(backjob, verdict.signature))) return next();

    const disconnected = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) disconnected.abort(new BackjobError('BACKJOB_ERR_CANCELED', 'The dispatching side went away'));
    });
    const end = res.end.bind(res) as (...args: unknown[]) => Response;
    const context = await backjob.contextFor(jobId, {
      signal: disconnected.signal,
      // The job's end is stored by now: the response can end at once.
      onEnd: () => {
        if (!res.writableEnded) end();
      },
    });
    // The runner, maybe in another process, completes the job when the response ends: whatever the
    // route reported through `req.backjob` first (a fail(), a last update) must be stored by then,
    // so its end wins and nothing it said is dropped. Only the end waits; output streams as written.
    res.end = ((...args: unknown[]) => {
      void context.flush().catch(() => {}).finally(() => end(...args));
      return res;
    }) as Response['end'];
    req.backjob = context;
    next();
  };
}

/**
 * Middleware that learns `baseUrl`, when nobody configured it, from the first
 * request the app serves: the address and port the app listens on, over TLS
 * or not. Route jobs then call the app where it already answers. It also
 * keeps that request's Host: on an address, the name an anonymous route job
 * checks the app's certificate against.
 */
export function learnBaseUrl(backjob: BackJobHost): RequestHandler {
  return (req, _res, next) => {
    if (!servedHosts.has(backjob) && req.headers.host) servedHosts.set(backjob, req.headers.host);
    if (!backjob.options.baseUrl) {
      const socket = req.socket as typeof req.socket & { encrypted?: boolean };
      let address = socket.localAddress;
      if (address && socket.localPort) {
        if (address.startsWith('::ffff:')) address = address.slice(7);
        const host = address.includes(':') ? `[${address}]` : address;
        backjob.options.baseUrl = `${socket.encrypted ? 'https' : 'http'}://${host}:${socket.localPort}`;
      }
    }
    next();
  };
}
