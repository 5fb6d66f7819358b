/**
 * How an adapter finds the HTTP API of the shim an app hands it. The
 * composition root (`createBackJob`) may provide its own, with raw routes
 * such as the Server-Sent Events endpoint, under {@link HTTP_API}; a shim
 * without one gets the API over its own members, with dispatch recognition
 * and base-URL learning as the inbound middleware.
 */
import type { IncomingMessage } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import { learnBaseUrl, recognizeDispatch } from '../dispatch/dispatch.js';
import type { BackJob } from '../types.js';
import { createHttpApi, type HttpApi, type HttpApiOptions } from './api.js';
import type { RawHandler } from './model.js';

/** Where a shim keeps its HTTP API (`Symbol.for`: one key, however many copies of this module load). */
export const HTTP_API: unique symbol = Symbol.for('backjob.http-api') as never;

/** A shim that may carry its HTTP API. */
type WithApi = BackJob & { [HTTP_API]?: HttpApi };

/**
 * Dispatch's Express middleware over a bare request: it reads
 * `req.originalUrl` (the URL before a router's mount point stripped its
 * prefix), which only Express sets; anywhere else `req.url` is that URL.
 */
function onNodeRequest(middleware: RequestHandler): RawHandler {
  return (req: IncomingMessage & { originalUrl?: string }, res, next) => {
    req.originalUrl ??= req.url;
    return middleware(req as Request, res as Response, next) as void | Promise<void>;
  };
}

/** The HTTP API over a shim's own members: the shim as its host, base-URL learning and dispatch recognition inbound, no raw routes. */
export function shimHttpOptions(backjob: BackJob): HttpApiOptions {
  return { host: backjob, inbound: [onNodeRequest(learnBaseUrl(backjob)), onNodeRequest(recognizeDispatch(backjob))] };
}

/**
 * Gives `backjob` its HTTP API, for every adapter mounted afterwards: what a
 * composition root does to add raw routes (`{ ...shimHttpOptions(backjob), rawRoutes }`).
 */
export function provideHttpApi(backjob: BackJob, options: HttpApiOptions): HttpApi {
  const api = createHttpApi(options);
  Object.defineProperty(backjob, HTTP_API, { value: api, configurable: true });
  return api;
}

/** The HTTP API of `backjob`: the one provided for it, else one over its members. */
export function httpApiOf(backjob: BackJob): HttpApi {
  return (backjob as WithApi)[HTTP_API] ?? createHttpApi(shimHttpOptions(backjob));
}
