/**
 * The one error type BackJob throws. Every error carries a machine-readable
 * `code` (`BACKJOB_ERR_…`) and the HTTP `status` the router answers with, so
 * one error middleware can map any of them.
 */

/** Codes of the errors the server throws or records, with their HTTP status. */
export const ERROR_STATUS = {
  /** Bad input: a nonsense progress value, an invalid option or job spec. */
  BACKJOB_ERR_INVALID: 400,
  /** Unknown job name, or a job that does not exist (or may not be seen). */
  BACKJOB_ERR_NOT_FOUND: 404,
  BACKJOB_ERR_UNKNOWN_JOB: 404,
  /** A browser asked for a job or route that was not declared launchable. */
  BACKJOB_ERR_NOT_LAUNCHABLE: 403,
  BACKJOB_ERR_FORBIDDEN: 403,
  /** Too many of one owner's jobs are waiting (`maxWaitingPerOwner`); the reply carries `Retry-After`. */
  BACKJOB_ERR_QUOTA: 429,
  /** The job already ended. */
  BACKJOB_ERR_ENDED: 409,
  /** Used before `ready` resolved, or after `close()`. */
  BACKJOB_ERR_NOT_READY: 503,
  BACKJOB_ERR_CLOSED: 503,
  /** Failure codes recorded on jobs (and abort reasons of their signals). */
  BACKJOB_ERR_STALLED: 500,
  BACKJOB_ERR_TIMEOUT: 504,
  BACKJOB_ERR_CANCELED: 409,
  BACKJOB_ERR_SHUTDOWN: 503,
  BACKJOB_ERR_INTERRUPTED: 500,
  BACKJOB_ERR_INTERNAL: 500,
} as const;

/** A code listed in {@link ERROR_STATUS}, or any other `BACKJOB_ERR_…` (e.g. `BACKJOB_ERR_HTTP_403`). */
export type BackjobErrorCode = keyof typeof ERROR_STATUS | `BACKJOB_ERR_${string}`;

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
   * @param code the error code; `status` defaults to the code's entry in {@link ERROR_STATUS}, else 500
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
