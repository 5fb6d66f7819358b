/**
 * The HTTP API as one framework-neutral object: the routes of handlers.ts
 * plus the raw routes of the composition root (streams that write their own
 * response), matched below `basePath`, and the inbound middleware every
 * request of the app passes first (dispatch recognition). The adapters mount
 * it: router.ts (Express), fastify.ts, node.ts (`node:http` and frameworks on it).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { readJsonBody } from './body.js';
import { apiRoutes } from './handlers.js';
import { errorReply, writeReply } from './reply.js';
import type { TrustProxy } from '../types.js';
import type { ApiReply, ApiRequest, ApiRoute, HttpHost, RawHandler, RawRoute } from './model.js';

/** What the composition root gives the HTTP API. */
export interface HttpApiOptions {
  host: HttpHost;
  /**
   * Run, in order, for every request of the app before anything reads its
   * body (any route of the app may be a dispatched job): dispatch recognition,
   * learning the base URL. Each calls `next()` to go on, or `next(error)`.
   */
  inbound?: readonly RawHandler[];
  /** Endpoints below `basePath` that write their own response (Server-Sent Events). */
  rawRoutes?: readonly RawRoute[];
}

/** What a path below `basePath` is. */
export type ApiMatch = { kind: 'api'; route: ApiRoute; path: string; query: URLSearchParams; params: Record<string, string> } | { kind: 'raw'; route: RawRoute };

export interface HttpApi {
  readonly basePath: string;
  /** Remembers the app's `trust proxy` for requests the framework never sees (WebSocket upgrades): see `HttpHost.learnTrustProxy`. */
  learnTrustProxy(trust: TrustProxy | undefined): void;
  /** Runs the inbound middleware for `req`, then `next()`, or `next(error)` at the first that fails. */
  recognize(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void;
  /** What `path` (below `basePath`, with its query string) is for `method`, or null when it is not the API's. */
  match(method: string, path: string): ApiMatch | null;
  /**
   * Answers a matched API route: checks, reads the body (from `body`, else
   * from `raw`), handles; every error mapped. Null: not the API's after all,
   * pass it to the app.
   */
  serve(match: Extract<ApiMatch, { kind: 'api' }>, raw: IncomingMessage, framework: IncomingMessage, body?: Readable): Promise<ApiReply | null>;
  /**
   * The whole API as Node's request handler: inbound middleware, then the
   * API's routes below `basePath` (of `req.url`), then `next()` for anything
   * else; without `next`, a 404.
   */
  handle(req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void, framework?: IncomingMessage): void;
}

/** The path below `basePath` (`/jobs`, `''` for `basePath` itself), or null for a path elsewhere. Case-insensitive, as routers are. */
export function below(basePath: string, url: string): string | null {
  const base = basePath.replace(/\/+$/, '');
  if (url.slice(0, base.length).toLowerCase() !== base.toLowerCase()) return null;
  const rest = url.slice(base.length);
  return rest === '' || rest.startsWith('/') || rest.startsWith('?') ? rest : null;
}

/** A path segment decoded, or a URIError (a 400) for malformed percent-encoding. */
function decode(segment: string): string {
  return decodeURIComponent(segment);
}

/** The answer to a request nobody serves, when there is no app behind the API to pass it to. */
export const NOT_FOUND: ApiReply = { status: 404, json: { error: { code: 'BACKJOB_ERR_NOT_FOUND', message: 'Not found' } } };

function answerError(error: unknown, res: ServerResponse): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  writeReply(res, errorReply(error));
}

export function createHttpApi({ host, inbound = [], rawRoutes = [] }: HttpApiOptions): HttpApi {
  const routes = apiRoutes(host);
  const basePath = host.options.basePath;

  const api: HttpApi = {
    basePath,
    learnTrustProxy: (trust) => host.learnTrustProxy(trust),

    recognize(req, res, next) {
      let index = 0;
      const step = (error?: unknown): void => {
        if (error !== undefined) return next(error);
        const middleware = inbound[index++];
        if (!middleware) return next();
        try {
          Promise.resolve(middleware(req, res, step)).catch(step);
        } catch (thrown) {
          step(thrown);
        }
      };
      step();
    },

    match(method, target) {
      const at = target.indexOf('?');
      const path = at === -1 ? target : target.slice(0, at);
      const verb = method === 'HEAD' ? 'GET' : method;
      const raw = rawRoutes.find((r) => r.method === method && (path === r.path || path.startsWith(`${r.path}/`)));
      if (raw) return { kind: 'raw', route: raw };
      for (const route of routes) {
        if (route.method !== verb) continue;
        const found = route.pattern.exec(path);
        if (!found) continue;
        const params: Record<string, string> = {};
        route.params?.forEach((name, i) => {
          if (found[i + 1] !== undefined) params[name] = found[i + 1]!;
        });
        return { kind: 'api', route, path, query: new URLSearchParams(at === -1 ? '' : target.slice(at + 1)), params };
      }
      return null;
    },

    async serve(match, raw, framework, body = raw) {
      const { route } = match;
      let headers: Record<string, string> | null = null;
      let reply: ApiReply | null;
      try {
        const params: Record<string, string> = {};
        for (const [name, value] of Object.entries(match.params)) params[name] = decode(value);
        const req: Omit<ApiRequest, 'body'> = { method: raw.method ?? 'GET', path: match.path, query: match.query, headers: raw.headers, params, raw, framework };
        headers = route.headers?.(req) ?? null;
        route.body?.accept(req);
        const parsed = route.body ? await readJsonBody(raw, route.body.maxBody, body, route.body.limitOf) : undefined;
        reply = await route.handle({ ...req, body: parsed });
      } catch (error) {
        reply = errorReply(error);
      }
      if (reply && headers) reply.headers = { ...headers, ...reply.headers };
      return reply;
    },

    handle(req, res, next, framework = req) {
      const pass = next ?? (() => writeReply(res, NOT_FOUND));
      api.recognize(req, res, (error) => {
        if (error !== undefined) return answerError(error, res);
        const path = below(basePath, req.url ?? '/');
        const found = path === null ? null : api.match(req.method ?? 'GET', path);
        if (!found) return pass();
        if (found.kind === 'raw') {
          return void Promise.resolve()
            .then(() => found.route.handle(req, res, pass))
            .catch((error: unknown) => answerError(error, res));
        }
        api.serve(found, req, framework).then(
          (reply) => (reply ? writeReply(res, reply) : pass()),
          (error: unknown) => answerError(error, res),
        );
      });
    },
  };
  return api;
}
