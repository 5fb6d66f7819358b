/**
 * What `backjob.router()` mounts into the app: the dispatched-request
 * middleware (for every path, so any route of the app can be a job) and the
 * HTTP API under `basePath`. Everything else passes through to the app's own
 * routes untouched.
 */
import express from 'express';
import type { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import type { ErrorReply, StartReply, StartRequest, TicketReply } from '../../shared/protocol.js';
import { JOB_STATUSES } from '../../shared/protocol.js';
import { learnBaseUrl, recognizeDispatch } from '../dispatch/dispatch.js';
import { toSnapshot } from '../backends/records.js';
import { clientBundle } from './client-bundle.js';
import { createSseTransport } from '../live/sse.js';
import { BackjobError, isBackjobError } from '../errors.js';
import { invalid, isPlainObject } from '../validate.js';
import { TICKET_TTL_MS, issueTicket } from '../access/tickets.js';
import type { Access, BackJob, JobRecord, JobSpec, JobStatus } from '../types.js';

/** Largest `POST /jobs` body. A start request is a name and a few params: anything bigger is a mistake or an attack. */
const MAX_START_BODY = '16kb';
const START_FIELDS = new Set(['name', 'route', 'method', 'params', 'body', 'bodyType']);

/**
 * Refuses a state-changing request sent from a page the origin policy does
 * not allow. Browsers send `Origin` with every cross-origin POST (and
 * same-origin ones), and a form on another site cannot forge it: checking it
 * blocks cross-site request forgery by form post or fetch. Requests without
 * Origin (curl, server-to-server) carry no ambient browser session risk and pass.
 */
function requireAllowedOrigin(backjob: BackJob, req: Request): void {
  const origin = req.headers.origin;
  if (origin === undefined) {
    // No Origin, yet a browser says another site sent it: an old browser's form post.
    if (req.headers['sec-fetch-site'] === 'cross-site') throw new BackjobError('BACKJOB_ERR_CROSS_ORIGIN', 'Cross-site requests are refused', { status: 403 });
    return;
  }
  if (!backjob.originAllowed(origin, req)) {
    throw new BackjobError('BACKJOB_ERR_CROSS_ORIGIN', `Requests from origin ${origin} are refused`, { status: 403 });
  }
}

/** The route job's query string: string values only, as a URL carries them. */
function toQuery(params: Record<string, unknown>): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  const scalar = (name: string, value: unknown): string => {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
    throw invalid(`Expected \`params.${name}\` to be a string, number or boolean (or a list of them) for a route job`);
  };
  for (const [name, value] of Object.entries(params)) {
    query[name] = Array.isArray(value) ? value.map((item) => scalar(name, item)) : scalar(name, value);
  }
  return query;
}

/** Schema-checks a `POST /jobs` body and turns it into a job spec a browser may start, or throws why not. */
function parseStart(backjob: BackJob, body: unknown): JobSpec {
  if (!isPlainObject(body)) throw invalid('Expected a JSON object');
  const unknown = Object.keys(body).filter((field) => !START_FIELDS.has(field));
  if (unknown.length > 0) throw invalid(`Unknown field ${JSON.stringify(unknown[0])}`);
  const request = body as StartRequest;
  if ((request.name === undefined) === (request.route === undefined)) throw invalid('Expected exactly one of `name` and `route`');
  if (request.params !== undefined && !isPlainObject(request.params)) throw invalid('Expected `params` to be an object');
  if (request.body !== undefined && !isPlainObject(request.body)) throw invalid('Expected `body` to be an object');

  if (request.name !== undefined) {
    if (typeof request.name !== 'string' || request.name.length === 0 || request.name.length > 200) {
      throw invalid('Expected `name` to be a job name');
    }
    if (request.method !== undefined || request.body !== undefined || request.bodyType !== undefined) {
      throw invalid('`method`, `body` and `bodyType` apply to route jobs only');
    }
    const definition = backjob.definition(request.name);
    if (!definition) throw new BackjobError('BACKJOB_ERR_UNKNOWN_JOB', `Unknown job ${JSON.stringify(request.name)}`);
    if (!definition.options.launchable) {
      throw new BackjobError('BACKJOB_ERR_NOT_LAUNCHABLE', `Job ${JSON.stringify(request.name)} is not launchable from a browser`);
    }
    return { name: request.name, params: request.params ?? {} };
  }

  if (typeof request.route !== 'string' || !request.route.startsWith('/') || request.route.length > 2048) {
    throw invalid('Expected `route` to be a path beginning with `/`');
  }
  if (request.method !== undefined && (typeof request.method !== 'string' || !/^[A-Za-z]{1,16}$/.test(request.method))) {
    throw invalid('Expected `method` to be an HTTP method');
  }
  if (request.bodyType !== undefined && request.bodyType !== 'form' && request.bodyType !== 'json') {
    throw invalid('Expected `bodyType` to be "form" or "json"');
  }
  if (!backjob.isLaunchableRoute(request.route)) {
    throw new BackjobError('BACKJOB_ERR_NOT_LAUNCHABLE', `Route ${request.route} is not launchable from a browser`);
  }
  return {
    route: request.route,
    method: request.method?.toUpperCase() ?? (request.body === undefined ? 'GET' : 'POST'),
    ...(request.params && { query: toQuery(request.params) }),
    ...(request.body && { body: request.body }),
    ...(request.bodyType && { bodyType: request.bodyType }),
  };
}

/** Who asks: the app's principal, and a watch token from `X-Backjob-Token` or `?token=`. */
async function accessOf(backjob: BackJob, req: Request): Promise<Access> {
  const header = req.headers['x-backjob-token'];
  const query = req.query.token;
  const token = typeof header === 'string' ? header : typeof query === 'string' ? query : undefined;
  return { principal: await backjob.identify(req), token };
}

/** The job, if the caller may see it. Unknown and forbidden read the same, so a guessed id learns nothing. */
async function authorizedJob(backjob: BackJob, req: Request): Promise<JobRecord> {
  const id = String(req.params.id);
  const job = /^[A-Za-z0-9_-]{1,64}$/.test(id) ? await backjob.authorize(id, await accessOf(backjob, req)) : null;
  if (!job) throw new BackjobError('BACKJOB_ERR_NOT_FOUND', 'No such job');
  return job;
}

/**
 * The same handler on Express 4 and 5: Express 5 passes a rejected promise to
 * the error handler, Express 4 drops it (the request hangs, and an unhandled
 * rejection ends the process).
 */
function forwardErrors(handler: (req: Request, res: Response, next: NextFunction) => unknown): RequestHandler {
  return (req, res, next) => {
    try {
      Promise.resolve(handler(req, res, next)).catch(next);
    } catch (error) {
      next(error);
    }
  };
}

/** `/client.js`, or `/client.<hash>.js`, and nothing else. */
const CLIENT_PATH = /^\/client(?:\.([0-9a-f]{12}))?\.js$/;

/**
 * Serves the client bundle (see client-bundle.ts) under `basePath`, and no
 * other file:
 *
 * - `/client.<hash>.js` is the bundle, cached for a year as `immutable`: its
 *   URL changes with its content.
 * - `/client.js` is the one line pages write. It is a one-statement module,
 *   `export * from '../client.<hash>.js'`, revalidated on every load
 *   (`no-cache` and an ETag, so a 304 when nothing changed): a deploy reaches
 *   every page at once, and pages that load either URL share one module, so
 *   the elements are defined once.
 *
 * Another hash (an older or a newer version's) is not this bundle: it passes
 * through, to the app's own 404.
 */
function serveClient(req: Request, res: Response, next: NextFunction): Promise<void> | void {
  if (req.method !== 'GET' && req.method !== 'HEAD') return next();
  const match = CLIENT_PATH.exec(req.path);
  if (!match) return next();
  return clientBundle().then(({ code, hash }) => {
    if (match[1] !== undefined && match[1] !== hash) return next();
    res.set({
      'content-type': 'text/javascript; charset=utf-8',
      'x-content-type-options': 'nosniff',
      etag: `"${hash}"`,
      'cache-control': match[1] === undefined ? 'no-cache' : 'public, max-age=31536000, immutable',
    });
    // res.send answers 304 when If-None-Match holds the ETag.
    res.send(match[1] === undefined ? `export * from '../client.${hash}.js';\n` : code);
  });
}

/** Maps every error of the API (and of dispatch recognition) to its status and `{ error: { code, message } }`. */
function replyWithError(error: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) return next(error);
  let reply: ErrorReply;
  let status: number;
  const parserError = error as { type?: string; status?: number; expose?: boolean; message?: string } | null;
  if (isBackjobError(error)) {
    status = error.status;
    reply = { error: { code: error.code, message: error.message } };
    if (error.retryAfter !== undefined) res.set('retry-after', String(error.retryAfter));
  } else if (parserError?.type === 'entity.too.large') {
    status = 413;
    reply = { error: { code: 'BACKJOB_ERR_TOO_LARGE', message: `The request body exceeds ${MAX_START_BODY}` } };
  } else if (parserError?.type === 'entity.parse.failed') {
    status = 400;
    reply = { error: { code: 'BACKJOB_ERR_INVALID', message: 'The request body is not valid JSON' } };
  } else if (error instanceof URIError) {
    // A path the router could not decode (`/jobs/%E0%A4%A`): the client's fault, and nothing to show of it.
    status = 400;
    reply = { error: { code: 'BACKJOB_ERR_INVALID', message: 'The request path is not valid percent-encoding' } };
  } else if (parserError?.expose === true && Number(parserError.status) >= 400 && Number(parserError.status) < 500) {
    // The client's fault, as the body parser saw it (an unsupported charset or encoding, a corrupt gzip body).
    status = parserError.status!;
    const code = status === 415 ? 'BACKJOB_ERR_UNSUPPORTED_MEDIA_TYPE' : 'BACKJOB_ERR_INVALID';
    reply = { error: { code, message: parserError.message ?? 'Bad request' } };
  } else {
    // Unexpected: say nothing about internals to the caller.
    status = 500;
    reply = { error: { code: 'BACKJOB_ERR_INTERNAL', message: 'Internal error' } };
  }
  res.status(status).json(reply);
}

/**
 * The HTTP API under `basePath` plus the dispatched-request middleware, as one
 * Express router for `app.use(backjob.router())`, mounted before the app's
 * routes. Shapes in shared/protocol.ts:
 *
 * - `POST /jobs` (JSON, same origin, ≤ 16 KB) `StartRequest` → 202 `StartReply`,
 *   started as the caller (`as: req`); only launchable names and routes.
 * - `GET /jobs/:id` → `JobSnapshot`, for the owner or the watch token
 *   (`X-Backjob-Token` header or `?token=`).
 * - `POST /jobs/:id/cancel` (same origin) → `{ canceled, snapshot }`;
 *   `canceled` is false when the job had already ended.
 * - `GET /jobs?status=a,b&limit=n` → `{ jobs: JobSnapshot[] }`, the caller's
 *   own, newest first; 401 without a principal.
 * - `POST /tickets` (same origin) → `TicketReply`: a single-use ticket that
 *   opens the live channel as the caller (see tickets.ts).
 * - `GET /client.js` → the browser side as one ES module, for
 *   `<script type="module" src="/backjob/client.js">` (see {@link serveClient}).
 *
 * Every failure is `ErrorReply` with a `BACKJOB_ERR_…` code; an unknown job
 * and a forbidden one are the same 404. A start over the caller's quota of
 * waiting jobs is 429 `BACKJOB_ERR_QUOTA` with `Retry-After` (seconds).
 */
export function createRouter(backjob: BackJob): Router {
  const api = express.Router();
  api.use((_req, res, next) => {
    // Snapshots are live state and may be personal: never cached by a browser or a proxy.
    res.set('cache-control', 'no-store');
    next();
  });

  const acceptStart = (req: Request, _res: Response, next: NextFunction) => {
    requireAllowedOrigin(backjob, req);
    // JSON only: a form post from another site cannot send it without a CORS preflight, which it won't get.
    // Checked on the header itself: `req.is` answers null for a request without a body, which is a 400, not a 415.
    if (!/^application\/json\s*(;|$)/i.test(req.get('content-type') ?? '')) {
      throw new BackjobError('BACKJOB_ERR_UNSUPPORTED_MEDIA_TYPE', 'Expected Content-Type: application/json', { status: 415 });
    }
    next();
  };
  api.post('/jobs', acceptStart, express.json({ limit: MAX_START_BODY }), forwardErrors(async (req, res) => {
    const spec = parseStart(backjob, req.body);
    const started = await backjob.start(spec, { as: req });
    const job = await backjob.status(started.id);
    if (!job) throw new BackjobError('BACKJOB_ERR_NOT_FOUND', 'The job ended and was removed before it could be shown');
    const reply: StartReply = { ...started, snapshot: toSnapshot(job) };
    res.status(202).json(reply);
  }));

  // A ticket for the live channel, issued here because this request went through the app's
  // middleware (its session, passport, bearer token) and the socket's upgrade does not: see tickets.ts.
  // A page on another allowed origin (`allowedOrigins`) asks for its ticket across origins, with
  // the user's cookies or token: CORS lets exactly those origins read the answer, nobody else.
  api.use('/tickets', (req, res, next) => {
    const origin = req.headers.origin;
    if (origin === undefined || !backjob.originAllowed(origin, req)) return next();
    res.set({ 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' });
    if (req.method !== 'OPTIONS') return next();
    const asked = req.headers['access-control-request-headers'];
    res.set({ 'access-control-allow-methods': 'POST', 'access-control-max-age': '600', ...(asked ? { 'access-control-allow-headers': asked } : {}) });
    res.status(204).end();
  });
  api.post('/tickets', forwardErrors(async (req, res) => {
    requireAllowedOrigin(backjob, req);
    const principal = await backjob.identify(req);
    const reply: TicketReply = { ticket: issueTicket(backjob.key(), principal), expiresIn: TICKET_TTL_MS };
    res.json(reply);
  }));

  api.get('/jobs', forwardErrors(async (req, res) => {
    const principal = await backjob.identify(req);
    if (principal === null) throw new BackjobError('BACKJOB_ERR_UNAUTHORIZED', 'Listing jobs needs a signed-in user', { status: 401 });
    const status = req.query.status;
    const statuses = status === undefined ? undefined : String(status).split(',');
    if (statuses?.some((s) => !JOB_STATUSES.includes(s as JobStatus))) {
      throw invalid(`Expected \`status\` to be one or more of ${JOB_STATUSES.join(', ')}`);
    }
    const limit = req.query.limit === undefined ? 50 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw invalid('Expected `limit` to be an integer from 1 to 500');
    const jobs = await backjob.list({ owner: principal, status: statuses as JobStatus[] | undefined, limit });
    res.json({ jobs: jobs.map(toSnapshot) });
  }));

  api.get('/jobs/:id', forwardErrors(async (req, res) => {
    res.json(toSnapshot(await authorizedJob(backjob, req)));
  }));

  api.post('/jobs/:id/cancel', forwardErrors(async (req, res) => {
    requireAllowedOrigin(backjob, req);
    const job = await authorizedJob(backjob, req);
    const canceled = await backjob.cancel(job.id, 'canceled by user');
    const now = (await backjob.status(job.id)) ?? job;
    res.json({ canceled, snapshot: toSnapshot(now) });
  }));

  const router = express.Router();
  router.use((req, _res, next) => {
    // Upgrades never pass through Express: the hub checks origins with the trust this app set.
    backjob.learnTrustProxy(req.app.get('trust proxy fn'));
    next();
  });
  router.use(learnBaseUrl(backjob));
  router.use(forwardErrors(recognizeDispatch(backjob)));
  router.use(createSseTransport(backjob).handle); // the live channel's SSE transport: {basePath}/events
  router.use(backjob.options.basePath, forwardErrors(serveClient), api);
  router.use(replyWithError);
  return router;
}
