/**
 * Recognising the requests BackJob dispatched, whatever framework serves
 * them: a plain `(req, res)` of node:http, which Express, Fastify and the rest
 * all have underneath. A thin adapter per framework hands the context to the
 * route (Express: `express.ts`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { JOB_HEADER, SIGNATURE_HEADER, SIGNATURE_WINDOW_SECONDS, bodyDigest, checkSignatureHeader, verifyRequest } from '../access/signing.js';
import { BackjobError } from '../errors.js';
import type { JobContext } from '../types.js';
import { peekBody } from './peek-body.js';
import { MAX_DISPATCH_BODY_BYTES } from './target.js';

/** What recognising a dispatched request needs of the shim. */
export interface RecognizerHost {
  readonly ready: Promise<void>;
  key(): Buffer;
  claimOnce(key: string, ttlMs: number): Promise<boolean>;
  contextFor(id: string, options: { signal: AbortSignal; onEnd?: () => void }): Promise<JobContext>;
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

/** Claims a signature once (across processes where the backend can). */
function claimSignature(host: RecognizerHost, signature: string): Promise<boolean> {
  // A claim must outlive every moment the signature could still verify: the window on both sides of its timestamp.
  const ttlMs = 2 * SIGNATURE_WINDOW_SECONDS * 1000 + 1000;
  return host.claimOnce(`backjob:dispatch:${signature}`, ttlMs);
}

/**
 * The job context of a request BackJob dispatched, or null for any other
 * request: a signature valid for this job id, method, URL (`url`: path and
 * query string as on the request line, before any mount point stripped its
 * prefix) and body, fresh, and not seen before. The context's signal aborts
 * when the dispatching side goes away (cancel), and its end ends `res`. Any
 * other request passes as an ordinary one, its body untouched for the app's
 * own parsers; the BackJob headers are stripped from every request (before
 * this returns its promise), so the app cannot be fooled by them. Rejects
 * with a `BackjobError` for a valid signature of a job that already ended.
 *
 * It must run before anything reads the body: the body's digest is part of
 * what was signed. It reads the body only for a header that is well-formed and
 * fresh, and only up to {@link MAX_DISPATCH_BODY_BYTES}, and puts it back.
 *
 * What the route writes to the response reaches the log as the runner reads
 * it. A route that ends its job itself (`finish(result)`) should report
 * through the context's `log`: response output still in flight when the job
 * ends arrives after the end, and ended is final.
 */
export async function recognize(host: RecognizerHost, req: IncomingMessage, res: ServerResponse, url: string): Promise<JobContext | null> {
  const signature = req.headers[SIGNATURE_HEADER];
  const jobId = req.headers[JOB_HEADER];
  delete req.headers[SIGNATURE_HEADER];
  delete req.headers[JOB_HEADER];
  if (typeof signature !== 'string' || typeof jobId !== 'string') return null;
  // The cheap checks first: a malformed or stale header, or a body BackJob would not send, costs no read.
  if (!checkSignatureHeader(signature).ok) return null;
  const length = dispatchedBodyLength(req);
  if (length === null) return null;
  const body = await peekBody(req, length);
  if (body === null) return null;
  await host.ready;
  const verdict = verifyRequest(host.key(), signature, { jobId, method: req.method ?? '', url, bodyDigest: bodyDigest(body) });
  if (!verdict.ok || !(await claimSignature(host, verdict.signature))) return null;

  const disconnected = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) disconnected.abort(new BackjobError('BACKJOB_ERR_CANCELED', 'The dispatching side went away'));
  });
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  const context = await host.contextFor(jobId, {
    signal: disconnected.signal,
    // The job's end is stored by now: the response can end at once.
    onEnd: () => {
      if (!res.writableEnded) end();
    },
  });
  // The runner, maybe in another process, completes the job when the response ends: whatever the
  // route reported through the context first (a fail(), a last update) must be stored by then,
  // so its end wins and nothing it said is dropped. Only the end waits; output streams as written.
  res.end = ((...args: unknown[]) => {
    void context.flush().catch(() => {}).finally(() => end(...args));
    return res;
  }) as ServerResponse['end'];
  return context;
}
