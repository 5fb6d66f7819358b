/**
 * The HTTP API's routes as framework-neutral handlers (see model.ts). Shapes
 * in shared/protocol.ts; every path is below `basePath`:
 *
 * - `POST /jobs` (JSON, same origin, ≤ 16 KB) `StartRequest` → 202 `StartReply`,
 *   started as the caller (`as:` the framework's request); only launchable names and routes.
 *   `{ batch: [...members], title? }` (≤ 1 MB, ≤ 1,000 members, each checked as a
 *   single start) starts one batch job of them, the same reply.
 * - `GET /jobs/:id` → `JobSnapshot`, for the owner or the watch token
 *   (`X-Backjob-Token` header or `?token=`).
 * - `POST /jobs/:id/cancel` (same origin) → `{ canceled, snapshot }`;
 *   `canceled` is false when the job had already ended.
 * - `GET /jobs?status=a,b&limit=n` → `{ jobs: JobSnapshot[] }`, the caller's
 *   own top-level jobs (no children, no batch members), newest first; 401 without a principal.
 * - `POST /tickets` (same origin, or CORS for `allowedOrigins`) → `TicketReply`:
 *   a single-use ticket that opens the live channel as the caller (see tickets.ts).
 * - `GET /client.js`, `GET /client.<hash>.js` → the browser side (see client-route.ts).
 *
 * Every failure is `ErrorReply` with a `BACKJOB_ERR_…` code (see reply.ts); an
 * unknown job and a forbidden one are the same 404.
 */
import type { StartReply, TicketReply } from '../../shared/protocol.js';
import { JOB_STATUSES } from '../../shared/protocol.js';
import { toSnapshot } from '../core/records.js';
import { BackjobError } from '../errors.js';
import { invalid } from '../validate.js';
import { TICKET_TTL_MS, issueTicket } from '../access/tickets.js';
import type { JobRecord, JobStatus } from '../types.js';
import { clientRoute } from './client-route.js';
import { MAX_BATCH_BODY, parseStartBody, startBodyLimit } from './start-request.js';
import type { ApiReply, ApiRequest, ApiRoute, HttpHost } from './model.js';

/**
 * Refuses a state-changing request sent from a page the origin policy does
 * not allow. Browsers send `Origin` with every cross-origin POST (and
 * same-origin ones), and a form on another site cannot forge it: checking it
 * blocks cross-site request forgery by form post or fetch. Requests without
 * Origin (curl, server-to-server) carry no ambient browser session risk and pass.
 */
function requireAllowedOrigin(host: HttpHost, req: Pick<ApiRequest, 'headers' | 'raw'>): void {
  const origin = req.headers.origin;
  if (origin === undefined) {
    // No Origin, yet a browser says another site sent it: an old browser's form post.
    if (req.headers['sec-fetch-site'] === 'cross-site') throw new BackjobError('BACKJOB_ERR_CROSS_ORIGIN', 'Cross-site requests are refused', { status: 403 });
    return;
  }
  if (!host.originAllowed(origin, req.raw)) {
    throw new BackjobError('BACKJOB_ERR_CROSS_ORIGIN', `Requests from origin ${origin} are refused`, { status: 403 });
  }
}

/** The one value of a query parameter given once; undefined when absent or repeated. */
function single(query: URLSearchParams, name: string): string | undefined {
  const values = query.getAll(name);
  return values.length === 1 ? values[0] : undefined;
}

/** The job, if the caller may see it. Unknown and forbidden read the same, so a guessed id learns nothing. */
async function authorizedJob(host: HttpHost, req: ApiRequest): Promise<JobRecord> {
  const id = req.params.id ?? '';
  const header = req.headers['x-backjob-token'];
  const token = typeof header === 'string' ? header : single(req.query, 'token');
  const job = /^[A-Za-z0-9_-]{1,64}$/.test(id) ? await host.authorize(id, { principal: await host.identify(req.framework), token }) : null;
  if (!job) throw new BackjobError('BACKJOB_ERR_NOT_FOUND', 'No such job');
  return job;
}

/** Headers that let an allowed other origin read a ticket with the user's credentials; none for anyone else. */
function corsFor(host: HttpHost, req: Pick<ApiRequest, 'headers' | 'raw'>): Record<string, string> | null {
  const origin = req.headers.origin;
  if (origin === undefined || !host.originAllowed(origin, req.raw)) return null;
  return { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' };
}

const ok = (json: unknown, status = 200): ApiReply => ({ status, json });

/** The API's routes, over `host`. Their order does not matter: no two patterns match the same path. */
export function apiRoutes(host: HttpHost): ApiRoute[] {
  const start: ApiRoute = {
    method: 'POST',
    pattern: /^\/jobs\/?$/i,
    body: {
      // Read up to a batch's limit; a body that is not a batch is then held to the single start's.
      maxBody: MAX_BATCH_BODY,
      limitOf: startBodyLimit,
      accept(req) {
        requireAllowedOrigin(host, req);
        // JSON only: a form post from another site cannot send it without a CORS preflight, which it won't get.
        if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
          throw new BackjobError('BACKJOB_ERR_UNSUPPORTED_MEDIA_TYPE', 'Expected Content-Type: application/json', { status: 415 });
        }
      },
    },
    async handle(req) {
      const parsed = parseStartBody(host, req.body);
      const started =
        'spec' in parsed
          ? await host.start(parsed.spec, { as: req.framework })
          : await host.start(parsed.batch, { as: req.framework, ...(parsed.title === undefined ? {} : { title: parsed.title }) });
      const job = await host.status(started.id);
      if (!job) throw new BackjobError('BACKJOB_ERR_NOT_FOUND', 'The job ended and was removed before it could be shown');
      const reply: StartReply = { ...started, snapshot: toSnapshot(job) };
      return ok(reply, 202);
    },
  };

  const list: ApiRoute = {
    method: 'GET',
    pattern: /^\/jobs\/?$/i,
    async handle(req) {
      const principal = await host.identify(req.framework);
      if (principal === null) throw new BackjobError('BACKJOB_ERR_UNAUTHORIZED', 'Listing jobs needs a signed-in user', { status: 401 });
      const status = req.query.getAll('status');
      const statuses = status.length === 0 ? undefined : status.join(',').split(',');
      if (statuses?.some((s) => !JOB_STATUSES.includes(s as JobStatus))) {
        throw invalid(`Expected \`status\` to be one or more of ${JOB_STATUSES.join(', ')}`);
      }
      const limitValues = req.query.getAll('limit');
      const limit = limitValues.length === 0 ? 50 : Number(limitValues.join(','));
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw invalid('Expected `limit` to be an integer from 1 to 500');
      // Top-level jobs only: a batch's members and a parent's children are shown through it.
      const jobs = await host.list({ owner: principal, parent: null, status: statuses as JobStatus[] | undefined, limit });
      return ok({ jobs: jobs.map(toSnapshot) });
    },
  };

  const snapshot: ApiRoute = {
    method: 'GET',
    pattern: /^\/jobs\/([^/]+)\/?$/i,
    params: ['id'],
    handle: async (req) => ok(toSnapshot(await authorizedJob(host, req))),
  };

  const cancel: ApiRoute = {
    method: 'POST',
    pattern: /^\/jobs\/([^/]+)\/cancel\/?$/i,
    params: ['id'],
    async handle(req) {
      requireAllowedOrigin(host, req);
      const job = await authorizedJob(host, req);
      const canceled = await host.cancel(job.id, 'canceled by user');
      const now = (await host.status(job.id)) ?? job;
      return ok({ canceled, snapshot: toSnapshot(now) });
    },
  };

  // A ticket for the live channel, issued here because this request went through the app's
  // middleware (its session, passport, bearer token) and the socket's upgrade does not: see tickets.ts.
  // A page on another allowed origin (`allowedOrigins`) asks for its ticket across origins, with
  // the user's cookies or token: CORS lets exactly those origins read the answer, nobody else.
  const ticket: ApiRoute = {
    method: 'POST',
    pattern: /^\/tickets\/?$/i,
    headers: (req) => corsFor(host, req),
    async handle(req) {
      requireAllowedOrigin(host, req);
      const principal = await host.identify(req.framework);
      const reply: TicketReply = { ticket: issueTicket(host.key(), principal), expiresIn: TICKET_TTL_MS };
      return ok(reply);
    },
  };

  const preflight: ApiRoute = {
    method: 'OPTIONS',
    pattern: /^\/tickets\/?$/i,
    async handle(req) {
      const cors = corsFor(host, req);
      // Not an origin this shim serves: the app's own OPTIONS handling (or its 404) answers.
      if (!cors) return null;
      const asked = req.headers['access-control-request-headers'];
      const headers = { ...cors, 'access-control-allow-methods': 'POST', 'access-control-max-age': '600', ...(asked ? { 'access-control-allow-headers': String(asked) } : {}) };
      return { status: 204, headers };
    },
  };

  return [start, list, snapshot, cancel, ticket, preflight, clientRoute];
}

