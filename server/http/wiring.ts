/**
 * How an adapter finds the HTTP API of the shim an app hands it: the
 * composition root (server/shim.ts) builds it once, over the internal host,
 * with dispatch recognition inbound and the live channel's raw routes, and
 * keeps it under {@link HTTP_API}. Adapters take the public `BackJob` an app
 * has and reach nothing else of it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { invalidOption } from '../validate.js';
import type { BackJob, JobContext } from '../types.js';
import type { HttpApi } from './api.js';
import type { RawHandler } from './model.js';

/** Where a shim keeps its HTTP API (`Symbol.for`: one key, however many copies of this module load). */
export const HTTP_API: unique symbol = Symbol.for('backjob.http-api') as never;

/** The HTTP API of `backjob`, as its composition root made it. */
export function httpApiOf(backjob: BackJob): HttpApi {
  const api = (backjob as BackJob & { [HTTP_API]?: HttpApi } | undefined)?.[HTTP_API];
  if (!api) throw invalidOption('backjob', 'what createBackJob() returned', backjob);
  return api;
}

/**
 * Dispatch recognition as inbound middleware of every adapter: a request
 * BackJob dispatched gets its job context as `req.backjob` on the bare
 * request, where each adapter hands it on (Express's req is that request;
 * Fastify copies it to `request.backjob`). `recognize` is given the URL as
 * the app received it: Express's `originalUrl` is the URL before a router's
 * mount point stripped its prefix, elsewhere `req.url` is.
 */
export function recognizeInbound(recognize: (req: IncomingMessage, res: ServerResponse, url: string) => Promise<JobContext | null>): RawHandler {
  return (req: IncomingMessage & { originalUrl?: string; backjob?: JobContext }, res, next) => {
    recognize(req, res, req.originalUrl ?? req.url ?? '/').then((context) => {
      if (context) req.backjob = context;
      next();
    }, next);
  };
}
