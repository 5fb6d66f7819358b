/**
 * What the page knows of one watched job, shared by every element watching
 * it: the snapshot, the log lines so far, the last seq (what a resubscription
 * resumes after), and how its stream stands. The connection feeds it what the
 * server sends; this folds it in and says what the watchers hear.
 */
import { applyEvent, type ErrorCode, type JobEvent, type JobSnapshot } from '../shared/protocol.js';
import type { WatchListener, WatchUpdate } from './types.js';

/** One `watch()` call: its listener gets nothing until it had its initial delivery. */
export interface Watcher {
  listener: WatchListener;
  ready: boolean;
}

/** What the page knows about one job: enough for a late watcher to start where the first one is. */
export interface WatchedJob {
  token?: string;
  watchers: Set<Watcher>;
  snapshot?: JobSnapshot;
  /** The job's log lines so far (the newest `maxLines`). */
  lines: JobEvent[];
  /** Seq of the last event received: what a resubscription resumes after. */
  lastSeq: number;
  /**
   * The server answered the latest subscribe with its snapshot. Events before
   * that belong to an earlier subscription (still on their way when it was
   * replaced); the new stream resends them after the seq it asked for.
   */
  streaming: boolean;
  /** `ref` of the latest subscribe: an error for an earlier one (say, refused without the token) is stale. */
  ref?: string;
  error?: { code: ErrorCode; message: string };
  /** The server refused it for good (not found / not allowed): not resubscribed on reconnect. */
  refused: boolean;
  retryTimer?: ReturnType<typeof setTimeout>;
  /** Retries since the stream last delivered events: what the next retry's delay grows with. */
  retries: number;
}

export function watchedJob(token: string | undefined): WatchedJob {
  return { token, watchers: new Set(), lines: [], lastSeq: 0, streaming: false, refused: false, retries: 0 };
}

/** Everything known so far, for a watcher that just joined. */
export function initialUpdate(job: WatchedJob, connection: WatchUpdate['connection']): WatchUpdate {
  const initial: WatchUpdate = { connection };
  if (job.snapshot) initial.snapshot = job.snapshot;
  if (job.lines.length > 0) initial.lines = job.lines.slice();
  if (job.error) initial.error = job.error;
  return initial;
}

/** The snapshot that opens a (re)subscription's stream. */
export function snapshotArrived(job: WatchedJob, snapshot: JobSnapshot, reset: boolean): WatchUpdate {
  job.streaming = true;
  job.error = undefined;
  if (reset) {
    // The server lost the history we resumed from; it resends the log from the start.
    job.lines = [];
    job.lastSeq = 0;
    job.snapshot = snapshot;
    return { snapshot, reset: true };
  }
  // Events received since may already be ahead of a snapshot read a moment earlier.
  if (!job.snapshot || snapshot.seq >= job.snapshot.seq) job.snapshot = snapshot;
  return { snapshot: job.snapshot };
}

/** Events of the current stream, folded in; what the watchers hear of them, if anything. */
export function eventsArrived(job: WatchedJob, events: JobEvent[], maxLines: number): WatchUpdate | null {
  if (!job.streaming) return null;
  const lines: JobEvent[] = [];
  for (const event of events) {
    if (event.seq <= job.lastSeq) continue; // already had it (a resubscribe racing a live event)
    job.lastSeq = event.seq;
    job.retries = 0; // the stream works again
    if (job.snapshot) job.snapshot = applyEvent(job.snapshot, event);
    if (event.type === 'job:log') lines.push(event);
  }
  if (lines.length > 0) {
    job.lines.push(...lines);
    if (job.lines.length > maxLines) job.lines.splice(0, job.lines.length - maxLines);
  }
  const update: WatchUpdate = {};
  if (job.snapshot) update.snapshot = job.snapshot;
  if (lines.length > 0) update.lines = lines;
  return update.snapshot || update.lines ? update : null;
}

/** Tells every watcher that had its initial delivery. */
export function notify(job: WatchedJob, update: WatchUpdate): void {
  for (const watcher of job.watchers) if (watcher.ready) safely(watcher.listener, update);
}

/** Calls a listener; one that throws must not starve the others, so its error surfaces asynchronously. */
export function safely<T>(listener: (update: T) => void, update: T): void {
  try {
    listener(update);
  } catch (error) {
    setTimeout(() => {
      throw error;
    });
  }
}
