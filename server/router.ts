// PLACEHOLDER (owned by the dispatch/router helper): replaced by the real HTTP API.
import type { Router } from 'express';
import type { BackJob } from './types.js';

/** The HTTP API under `basePath` plus the dispatched-request middleware. */
export function createRouter(_backjob: BackJob): Router {
  throw new Error('not implemented yet');
}
