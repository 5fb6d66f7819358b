/**
 * The call a route job makes: the signed request to the app at its base URL,
 * with the starting user's credentials when it runs as them, whose response
 * body becomes the job's log.
 */
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { JOB_HEADER, SIGNATURE_HEADER, bodyDigest, signRequest } from '../access/signing.js';
import { BackjobError } from '../errors.js';
import type { JobContext, JobRecord, JobStore } from '../types.js';
import type { AppAddress } from './base-url.js';
import { openCredentials } from './credentials.js';
import { LineCutter } from './line-cutter.js';
import { encodeBody, queryString } from './target.js';

/** Longest failure reason taken from a response body, in characters. */
const MAX_REASON_LENGTH = 500;
/** Bytes of an error response read to build the failure reason; the rest is discarded. */
const MAX_ERROR_BODY_BYTES = 16 * 1024;

/** What a route call needs of the shim: its key, where credentials wait, and how long a log line may be. */
export interface CallerHost {
  key(): Buffer;
  readonly backend: { readonly store: Pick<JobStore, 'takeCredentials'> };
  readonly options: { readonly maxLineLength: number };
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

/**
 * Runs a route job: sends the signed request to the app at its base URL and
 * streams the response body into the job's log, line by line. Resolves when
 * the response ended with a 2xx status (the runner then completes the job,
 * unless the route already ended it through `req.backjob`). Rejects with a
 * `BackjobError` when it did not: a status ≥ 300 (redirects are not followed:
 * a redirect to a login page is a failure, not a success) with the status and
 * the response text as the reason and `BACKJOB_ERR_HTTP_<status>` as the code,
 * a connection error, or no known base URL. Aborting `ctx.signal` (cancel,
 * timeout, shutdown) aborts the request, which aborts the route's own signal.
 */
export async function callRoute(host: CallerHost, address: AppAddress, job: JobRecord, ctx: JobContext): Promise<void> {
  const route = job.route;
  if (!route) throw new BackjobError('BACKJOB_ERR_INTERNAL', `Job ${job.id} is not a route job`);
  const key = host.key();
  // Taken once, first: whatever happens next, the credentials no longer sit in storage.
  const sealed = await host.backend.store.takeCredentials(job.id);
  const baseUrl = address.url;
  if (!baseUrl) {
    throw new BackjobError(
      'BACKJOB_ERR_NO_BASE_URL',
      "Route jobs need the app's address: set the `baseUrl` option (e.g. `http://127.0.0.1:3000`), or attach() the server, or let the app serve one request through backjob.router() first",
    );
  }
  const forwarded = openCredentials(key, sealed);

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
  // base URL), the name the app is reached by: the user's Host, else the first one it served.
  const servername = hostnameOf(base.host) ?? hostnameOf(forwarded.host ?? address.servedHost);

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
        let text = '';
        response.on('data', (chunk: Buffer) => {
          if (text.length < MAX_ERROR_BODY_BYTES) text += decoder.decode(chunk, { stream: true });
        });
        response.on('end', () => {
          const location = response.headers.location;
          const detail = status < 400 && location ? `redirected to ${location}` : reasonText(text, response.headers['content-type']);
          reject(httpFailure(status, response.statusMessage, detail));
        });
        return;
      }
      const lines = new LineCutter(host.options.maxLineLength, (line) => ctx.log(line));
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
