/**
 * Starting a job over the HTTP API (`POST {basePath}/jobs`), as the current
 * user: the request carries the page's cookies, so the server's `identify`
 * sees the same session as for any other request of the app.
 */
import type { ErrorReply, StartReply, StartRequest } from '../shared/protocol.js';
import { extraHeaders } from './config.js';

/** Mount point of the HTTP API when the app does not configure another. */
export const DEFAULT_BASE_PATH = '/backjob';

/** A refused or failed start: the server's error code and message, or a network failure. */
export class BackjobApiError extends Error {
  override name = 'BackjobApiError';
  /** `BACKJOB_ERR_…` from the server, or `BACKJOB_ERR_NETWORK` when no reply came. */
  readonly code: string;
  /** HTTP status, 0 when no reply came. */
  readonly status: number;

  constructor(code: string, message: string, status: number, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.status = status;
  }
}

/** Options of {@link startJob}. */
export interface StartJobOptions {
  /** Mount point of the HTTP API. Default `/backjob`. */
  basePath?: string;
  /** Aborts the request. */
  signal?: AbortSignal;
}

/**
 * Starts a job, or joins the identical one already waiting or running
 * (`reply.merged`). Rejects with a {@link BackjobApiError} carrying the
 * server's reason (not launchable, invalid request, …).
 */
export async function startJob(request: StartRequest, options: StartJobOptions = {}): Promise<StartReply> {
  const basePath = (options.basePath ?? DEFAULT_BASE_PATH).replace(/\/+$/, '');
  // Serialized at the call, before any await: a page starting jobs in a loop may reuse one object and change it.
  const payload = JSON.stringify(request);
  let response: Response;
  try {
    response = await fetch(`${basePath}/jobs`, {
      method: 'POST',
      headers: { ...(await extraHeaders()), 'content-type': 'application/json', accept: 'application/json' },
      body: payload,
      // Same-origin cookies only: the job runs as the user of this page's session.
      credentials: 'same-origin',
      signal: options.signal,
    });
  } catch (cause) {
    throw new BackjobApiError('BACKJOB_ERR_NETWORK', 'The server could not be reached', 0, { cause });
  }
  const body: unknown = await response.json().catch(() => undefined);
  if (!response.ok) {
    const error = (body as Partial<ErrorReply> | undefined)?.error;
    throw new BackjobApiError(
      typeof error?.code === 'string' ? error.code : `BACKJOB_ERR_HTTP_${response.status}`,
      typeof error?.message === 'string' ? error.message : `The server answered ${response.status} ${response.statusText}`.trim(),
      response.status,
    );
  }
  const reply = body as Partial<StartReply> | undefined;
  if (typeof reply?.id !== 'string' || typeof reply.token !== 'string') {
    throw new BackjobApiError('BACKJOB_ERR_BAD_REPLY', 'The server sent an unexpected reply', response.status);
  }
  return reply as StartReply;
}
