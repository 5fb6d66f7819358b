/**
 * Route dispatch: a job that runs one of the app's own routes, the way the
 * original BackJob for Yii does. The runner calls the app over HTTP at its
 * base URL with a signed request (and, as-user, the starting request's
 * credentials); the app's route finds its job context on `req.backjob` and
 * whatever it writes to the response becomes the job's log.
 *
 * One {@link Dispatch} per shim, over a narrow {@link DispatchHost}: the
 * outbound call (`outbound.ts`, with `target.ts` and `credentials.ts`), the
 * inbound recognition (`inbound.ts`, framework-neutral; `express.ts` is its
 * Express middleware) and the base URL (`base-url.ts`), each in its own file.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JobContext, JobRecord, RouteTarget } from '../types.js';
import { AppAddress } from './base-url.js';
import { sealCredentials } from './credentials.js';
import { recognize, type RecognizerHost } from './inbound.js';
import { callRoute, type CallerHost } from './outbound.js';
import { normalizeTarget } from './target.js';

export { MAX_DISPATCH_BODY_BYTES } from './target.js';

/** What dispatch needs of the shim: its key, claims, job contexts, where credentials wait, and two options. */
export interface DispatchHost extends CallerHost, RecognizerHost {
  readonly options: { readonly maxLineLength: number; readonly baseUrl?: string | undefined };
}

/** What a route job stores: its checked target, and (as-user) its sealed credentials with their keyed digest. */
export interface PreparedRoute {
  route: RouteTarget;
  credentials?: string;
  credentialsDigest?: string;
}

/** Route dispatch for one shim: calls out, recognises calls coming in, and knows where the app is. */
export class Dispatch {
  /** Where route jobs call the app: `baseUrl`, or learned (the one owner of it). */
  readonly address: AppAddress;
  readonly #host: DispatchHost;

  constructor(host: DispatchHost) {
    this.#host = host;
    this.address = new AppAddress(host.options.baseUrl);
  }

  /**
   * Turns a route spec and the starting request into what the job stores (see
   * {@link PreparedRoute}). Anonymous (`as` absent): nothing goes along.
   * Throws a `BackjobError` (`BACKJOB_ERR_INVALID`) for a target BackJob would not send.
   */
  prepare(target: RouteTarget, as: IncomingMessage | undefined): PreparedRoute {
    const route = normalizeTarget(target);
    return as ? { route, ...sealCredentials(this.#host.key(), as) } : { route };
  }

  /** Runs a route job to the end of its response (see `callRoute`). */
  run(job: JobRecord, context: JobContext): Promise<void> {
    return callRoute(this.#host, this.address, job, context);
  }

  /**
   * Every request the app serves passes here, before anything reads its body:
   * the base URL is learned from it, and a request BackJob dispatched gets its
   * job context (see `recognize`); null for any other. `url` is the URL as on
   * the request line (Express: `req.originalUrl`, which a mount point leaves whole).
   */
  recognize(req: IncomingMessage, res: ServerResponse, url: string = req.url ?? '/'): Promise<JobContext | null> {
    this.address.learnFromRequest(req);
    return recognize(this.#host, req, res, url);
  }
}
