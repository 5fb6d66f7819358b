/** Route dispatch in an Express app: the middleware `backjob.router()` mounts for every path. */
import type { RequestHandler } from 'express';
import type { Dispatch } from './dispatch.js';

/**
 * Gives a request BackJob dispatched its job context as `req.backjob` (see
 * `Dispatch.recognize`); every other request passes untouched. Errors (a
 * valid signature for a job that already ended) go to the app's error handling.
 */
export function dispatchMiddleware(dispatch: Dispatch): RequestHandler {
  return (req, res, next) => {
    // originalUrl: before a router mount point stripped its prefix from req.url.
    dispatch.recognize(req, res, req.originalUrl).then((context) => {
      if (context) req.backjob = context;
      next();
    }, next);
  };
}
