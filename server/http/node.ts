/**
 * The `node:http` adapter: the HTTP API as Node's request handler, for a
 * server of the app's own and for frameworks built on `node:http` that take
 * one (Koa through `app.callback()` wrappers, Hono's node server, h3,
 * Polka, connect). The live channel is `backjob.attach(server)`, which takes
 * the server's `upgrade` events.
 *
 * `identify` receives the bare `IncomingMessage`: read a bearer token or a
 * cookie from its headers.
 *
 * @example
 * const server = http.createServer(backjobHandler(backjob, (req, res) => app(req, res)));
 * backjob.attach(server);
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BackJob, JobContext } from '../types.js';
import { httpApiOf } from './wiring.js';

/** What the app does with a request that is not BackJob's: its own handler, or its framework's `next`. */
export type NextHandler = (error?: unknown) => void;

/**
 * A request handler that answers the HTTP API below `basePath` and passes
 * everything else on: to `next` when the caller gives one (a middleware
 * chain), else to `fallback`, else a 404. Dispatched requests are recognized
 * on every path, before anything reads their body; the route then finds its
 * job on `req.backjob`.
 */
export function backjobHandler(
  backjob: BackJob,
  fallback?: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse, next?: NextHandler) => void {
  const api = httpApiOf(backjob);
  return (req, res, next) => api.handle(req, res, next ?? (fallback && (() => fallback(req, res))));
}

/** The job a dispatched request runs (what Express apps read as `req.backjob`), or undefined for any other request. */
export function dispatchedJob(req: IncomingMessage): JobContext | undefined {
  return (req as IncomingMessage & { backjob?: JobContext }).backjob;
}
