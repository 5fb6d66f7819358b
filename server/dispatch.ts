// PLACEHOLDER (owned by the dispatch/router helper): replaced by the real route dispatch.
import type { IncomingMessage } from 'node:http';
import type { BackJob, JobContext, JobRecord, RouteTarget } from './types.js';

/**
 * Turns a route spec and the starting request into what the job stores: the
 * target, and (as-user) the request's cookies and Authorization header sealed
 * with the key.
 */
export function prepareRoute(
  _backjob: BackJob,
  _target: RouteTarget,
  _as: IncomingMessage | undefined,
): { route: RouteTarget; credentials?: string; credentialsDigest?: string } {
  throw new Error('not implemented yet');
}

/** Runs a route job: the signed loopback request, its response streamed into the job's log. */
export async function runRoute(_backjob: BackJob, _job: JobRecord, _ctx: JobContext): Promise<void> {
  throw new Error('not implemented yet');
}
