/**
 * The contract between the shared WebSocket connection (`connection.ts`)
 * and the elements that watch jobs through it.
 */
import type { ErrorCode, JobEvent, JobSnapshot } from '../shared/protocol.js';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** One notification to a watcher. Fields are present only when they changed. */
export interface WatchUpdate {
  /** The job's latest state. */
  snapshot?: JobSnapshot;
  /** New `job:log` events, in seq order, never one already delivered to this watcher. */
  lines?: JobEvent[];
  /** The server lost the history needed to resume: drop lines shown so far (they were resent). */
  reset?: boolean;
  /** The shared socket's state changed. */
  connection?: ConnectionState;
  /** The server refused or failed the subscription (forbidden, not found, …). */
  error?: { code: ErrorCode; message: string };
}

export type WatchListener = (update: WatchUpdate) => void;

/**
 * One WebSocket per endpoint, shared by every element on the page and
 * reference-counted by `watch`.
 */
export interface Connection {
  readonly state: ConnectionState;
  /**
   * Milliseconds to add to the browser's `Date.now()` to get the server's
   * clock, which stamps `startedAt`, `endedAt` and the rest: learned from the
   * server's `hello`. 0 (or absent) until known, or when the server does not say.
   */
  readonly clockOffset?: number;
  /**
   * Watches a job. The listener first receives everything known so far (a
   * late-joining element gets the full log and the snapshot), then every
   * change. Returns a function that stops watching; the socket closes when
   * nobody watches anything.
   */
  watch(jobId: string, token: string | undefined, listener: WatchListener): () => void;
  /** Asks the server to cancel a job; rejects with the server's reason. */
  cancel(jobId: string, token?: string): Promise<void>;
}
