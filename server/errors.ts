/**
 * The one error type BackJob throws. Every error carries a machine-readable
 * `code` (`BACKJOB_ERR_…`) and the HTTP `status` the router answers with, so
 * one error middleware can map any of them.
 */
import type { ErrorCode } from '../shared/protocol.js';

/**
 * Every code BackJob throws, records on a job or sends, with the HTTP status
 * it answers with and what it means: the one registry (a test scans the
 * sources for codes missing here). One family is a pattern instead:
 * `BACKJOB_ERR_HTTP_<status>`, a route job whose route answered `<status>`
 * (HTTP 502 when thrown). The wire codes of the live channel (`ErrorCode` in
 * shared/protocol.ts) are a subset, checked below; `client` marks the codes
 * only the browser client makes (no reply at all, or not the expected one).
 */
export const ERRORS = {
  // Input and access.
  BACKJOB_ERR_INVALID: { status: 400, doc: 'Bad input: an invalid option, argument, job spec or request body, a nonsense progress value.' },
  BACKJOB_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, doc: 'An HTTP API call whose body is not `application/json`.' },
  BACKJOB_ERR_TOO_LARGE: { status: 413, doc: 'A request body or live-channel frame over its size limit.' },
  BACKJOB_ERR_BAD_FRAME: { status: 400, doc: 'A live-channel frame that is not a valid message.' },
  BACKJOB_ERR_UNKNOWN_TYPE: { status: 400, doc: 'A live-channel message of a type the server does not know.' },
  BACKJOB_ERR_RATE_LIMITED: { status: 429, doc: 'A socket sending more messages per second than it may: the excess is dropped.' },
  BACKJOB_ERR_TOO_MANY_JOBS: { status: 429, doc: 'A socket that already watches as many jobs as the server allows: final.' },
  BACKJOB_ERR_TOO_MANY_STREAMS: { status: 503, doc: 'An SSE stream opened while the server already holds as many as it allows (`maxStreams`).' },
  BACKJOB_ERR_METHOD_NOT_ALLOWED: { status: 405, doc: 'An HTTP method the endpoint does not answer (the SSE stream is GET, its messages POST).' },
  BACKJOB_ERR_QUOTA: { status: 429, doc: "Too many of one owner's jobs are waiting (`maxWaitingPerOwner`); the reply carries `Retry-After`." },
  BACKJOB_ERR_CROSS_ORIGIN: { status: 403, doc: 'A request from an origin the origin policy refuses.' },
  BACKJOB_ERR_UNAUTHORIZED: { status: 401, doc: 'A call that needs a principal (listing own jobs) from nobody.' },
  BACKJOB_ERR_FORBIDDEN: { status: 403, doc: 'A job the caller may not watch or cancel.' },
  BACKJOB_ERR_NOT_LAUNCHABLE: { status: 403, doc: 'A browser asked for a job or route that was not declared launchable.' },
  BACKJOB_ERR_IDENTIFY: { status: 500, doc: "The app's `identify` returned something that is not a user id." },
  // Jobs.
  BACKJOB_ERR_NOT_FOUND: { status: 404, doc: 'A job that does not exist (or may not be seen: the same answer, so a guessed id learns nothing).' },
  BACKJOB_ERR_UNKNOWN_JOB: { status: 404, doc: 'A job name no `define()` declared (at start, or when a recovered job runs).' },
  BACKJOB_ERR_ENDED: { status: 409, doc: 'The job already ended (ended is final).' },
  BACKJOB_ERR_CHILD_FAILED: { status: 500, doc: "A child job (or batch member) failed or was canceled: the parent's failure, unless it spawned the child `optional` or asked for its `result()`." },
  // Lifecycle of the shim.
  BACKJOB_ERR_NOT_READY: { status: 503, doc: 'Used before `ready` resolved.' },
  BACKJOB_ERR_CLOSED: { status: 503, doc: 'Used after `close()`: no new jobs.' },
  BACKJOB_ERR_IN_USE: { status: 503, doc: "SQLite: another process runs the jobs of the same file and did not stop within `sqlite({ lockTimeout })`; one process runs a file's jobs." },
  // Failures recorded on jobs (and abort reasons of their signals).
  BACKJOB_ERR_CANCELED: { status: 409, doc: 'The job was canceled (the abort reason its handler sees).' },
  BACKJOB_ERR_STALLED: { status: 500, doc: 'No event for `errorTimeout` seconds.' },
  BACKJOB_ERR_TIMEOUT: { status: 504, doc: 'Ran longer than `timeout` seconds.' },
  BACKJOB_ERR_SHUTDOWN: { status: 503, doc: 'The shim is closing (the abort reason at `close()`), or the store did not answer at close.' },
  BACKJOB_ERR_INTERRUPTED: { status: 500, doc: 'The process running the job stopped (shutdown, crash) and the job had no retries left.' },
  BACKJOB_ERR_WORKER_LOST: { status: 500, doc: 'Redis: the worker running the job was lost (its lock expired) and the job had no retries left.' },
  // Route dispatch.
  BACKJOB_ERR_NO_BASE_URL: { status: 500, doc: "A route job with no known address of the app (`baseUrl`, `attach()`, or a first request)." },
  BACKJOB_ERR_DISPATCH: { status: 502, doc: 'The app did not answer a route job (connection refused, reset, timed out).' },
  BACKJOB_ERR_CREDENTIALS: { status: 500, doc: "A route job's sealed credentials could not be opened (the `key` changed)." },
  BACKJOB_ERR_INTERNAL: { status: 500, doc: 'A bug: an error BackJob did not expect.' },
  // Browser client only.
  BACKJOB_ERR_NETWORK: { status: 503, client: true, doc: 'Client: the server could not be reached.' },
  BACKJOB_ERR_BAD_REPLY: { status: 502, client: true, doc: 'Client: the server sent a reply of an unexpected shape.' },
  BACKJOB_ERR_DISCONNECTED: { status: 503, client: true, doc: 'Client: the live connection closed while a request on it was pending.' },
} as const satisfies Record<`BACKJOB_ERR_${string}`, { status: number; doc: string; client?: true }>;

/** A code of the registry ({@link ERRORS}). */
export type RegisteredErrorCode = keyof typeof ERRORS;

/** A route job's failure when its route answered `<status>`: the one code family outside the registry. */
export type HttpErrorCode = `BACKJOB_ERR_HTTP_${number}`;

/** The HTTP status of each registered code (what `BackjobError.status` defaults to). */
export const ERROR_STATUS = Object.fromEntries(Object.entries(ERRORS).map(([code, { status }]) => [code, status])) as {
  readonly [C in RegisteredErrorCode]: (typeof ERRORS)[C]['status'];
};

/** Whether `code` is registered, or of the `BACKJOB_ERR_HTTP_<status>` family. */
export function isKnownErrorCode(code: string): code is RegisteredErrorCode | HttpErrorCode {
  return Object.hasOwn(ERRORS, code) || /^BACKJOB_ERR_HTTP_\d{3}$/.test(code);
}

// The wire codes are a subset of the registry: this fails to compile when shared/protocol.ts adds one that is not registered.
type Subset<T extends true> = T;
export type WireCodesAreRegistered = Subset<ErrorCode extends RegisteredErrorCode ? true : false>;

/**
 * A registered code, a `BACKJOB_ERR_HTTP_<status>`, or (for errors an app
 * makes itself) any other `BACKJOB_ERR_…`.
 */
export type BackjobErrorCode = RegisteredErrorCode | HttpErrorCode | `BACKJOB_ERR_${string}`;

/**
 * An error with a `code` and an HTTP `status`.
 *
 * @example
 * throw new BackjobError('BACKJOB_ERR_NOT_FOUND', 'No such job');
 */
export class BackjobError extends Error {
  /** Machine-readable, stable across versions: `BACKJOB_ERR_…`. */
  readonly code: BackjobErrorCode;
  /** HTTP status the router answers with. */
  readonly status: number;
  /** Seconds after which trying again may succeed (the router sends it as `Retry-After`), when the error says so. */
  readonly retryAfter?: number;

  /**
   * @param code the error code; `status` defaults to the code's entry in {@link ERRORS}, else 500
   * @param options.cause the underlying error, kept for logs
   * @param options.retryAfter seconds until a retry may succeed (a whole number ≥ 1)
   */
  constructor(code: BackjobErrorCode, message: string, options: { status?: number; cause?: unknown; retryAfter?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BackjobError';
    this.code = code;
    this.status = options.status ?? (ERROR_STATUS as Record<string, number>)[code] ?? 500;
    if (options.retryAfter !== undefined) this.retryAfter = Math.max(1, Math.ceil(options.retryAfter));
  }
}

/** Whether `value` is a {@link BackjobError} (also across duplicated module copies). */
export function isBackjobError(value: unknown): value is BackjobError {
  return value instanceof BackjobError || (value instanceof Error && value.name === 'BackjobError' && 'code' in value);
}
