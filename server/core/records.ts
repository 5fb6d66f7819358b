/**
 * Job rows: how a store turns what it is given into rows and numbered events,
 * and what of a row anyone watching may see (`toSnapshot`). Every store runs
 * the first two inside its own atomic section (a transaction, a lock, a
 * script), so the rules of numbering and "ended is final" live in one place.
 */
import { foldEvent, initialSnapshot, isEnded } from '../../shared/protocol.js';
import { BackjobError } from '../errors.js';
import type { JobEvent, JobEventData, JobRecord, JobSnapshot, NewJob } from '../types.js';

/** The row and the `job:created` event (seq 1) of a new job. Credentials are not part of the row. */
export function createRecord(job: NewJob): { record: JobRecord; event: JobEvent } {
  const { credentials: _credentials, ...fields } = job;
  const event: JobEvent = { type: 'job:created', jobId: job.id, seq: 1, at: job.createdAt };
  // Object.assign, not spreads: on V8 a spread into an object that already has properties, or
  // one followed by new properties, takes a slow path; the spreads here cost about 17 µs a job.
  const base = Object.assign(initialSnapshot(job.id, job.name, job.createdAt), fields, { seq: 0, logLines: 0, attempt: 0, updatedAt: job.createdAt });
  const record: JobRecord = foldEvent(base as JobRecord, event);
  return { record, event };
}

/**
 * Numbers `events` after the record's last seq and folds them in. Events after
 * an end (already stored, or earlier in this same list) are dropped. A stored
 * `job:start` sets `runner` (when given) and, if it is a re-run
 * (`attempt > 1`), uses up one of `retriesLeft`; an end clears `runner`.
 */
export function appendToRecord(
  record: JobRecord,
  events: JobEventData[],
  runner: string | null | undefined,
  at: number,
): { record: JobRecord; stored: JobEvent[] } {
  const stored: JobEvent[] = [];
  if (events.length === 0 || isEnded(record.status)) return { record, stored };
  // One copy of the row for the whole run, every event folded into it in place: a flood of
  // log lines then costs a counter per line, not a copy of the row per line.
  const next: JobRecord = { ...record, updatedAt: at };
  for (const data of events) {
    if (isEnded(next.status)) break;
    const seq = next.seq + 1;
    // A log line, the flood's event, built as a literal; any other with Object.assign, as a spread
    // followed by new properties takes a slow path on V8 (2.5 µs an event against 0.2).
    const event = (data.type === 'job:log' ? { type: 'job:log', line: data.line, jobId: record.id, seq, at } : Object.assign({}, data, { jobId: record.id, seq, at })) as JobEvent;
    foldEvent(next, event);
    if (event.type === 'job:start') {
      if (runner !== undefined) next.runner = runner;
      if (event.attempt > 1) next.retriesLeft = Math.max(0, next.retriesLeft - 1);
    } else if (isEnded(next.status)) {
      next.runner = null;
    }
    stored.push(event);
  }
  return { record: next, stored };
}

/** Whether a job with this status holds its merge key (identical requests join it). */
export function isActive(record: Pick<JobRecord, 'status'>): boolean {
  return record.status === 'waiting' || record.status === 'running';
}

/**
 * The key a job queues under (see `JobRecord.queueKey`). Rows written before
 * quotas existed have none: they queue under their owner, or with the app's
 * own starts, which is what an SQLite migration fills in for them too.
 */
export function queueKeyOf(job: Pick<JobRecord, 'queueKey' | 'owner'>): string {
  return job.queueKey ?? (job.owner === null ? 'app' : `user:${job.owner}`);
}

/**
 * What a refused start is told to wait, in seconds. A slot frees when one of
 * the owner's waiting jobs starts, which takes about one job per other active
 * owner (the queue is round-robin), and nothing here knows how long jobs run:
 * a short fixed wait lets a polite client retry soon without hammering.
 */
export const QUOTA_RETRY_AFTER_SECONDS = 5;

/** The error of a create over its owner's quota of waiting jobs. */
export function overQuota(maxWaiting: number): BackjobError {
  return new BackjobError(
    'BACKJOB_ERR_QUOTA',
    `Too many jobs waiting: at most ${maxWaiting} may wait at once per user (or per address, when not signed in). Try again once one has started.`,
    { retryAfter: QUOTA_RETRY_AFTER_SECONDS },
  );
}

/**
 * The failure code of a job whose worker disappeared while running it (a
 * queue reported it lost, see `Handover`) and that had no retries left.
 */
export const WORKER_LOST = 'BACKJOB_ERR_WORKER_LOST';

/** The public part of a job record. Owner, queue key, merge key, params and route never leave the server. */
export function toSnapshot(job: JobRecord): JobSnapshot {
  const snapshot: JobSnapshot = {
    id: job.id,
    name: job.name,
    status: job.status,
    progress: job.progress,
    text: job.text,
    createdAt: job.createdAt,
    seq: job.seq,
    logLines: job.logLines,
    attempt: job.attempt,
  };
  if (job.title !== undefined) snapshot.title = job.title;
  if (job.result !== undefined) snapshot.result = job.result;
  if (job.error !== undefined) snapshot.error = job.error;
  if (job.errorCode !== undefined) snapshot.errorCode = job.errorCode;
  if (job.startedAt !== undefined) snapshot.startedAt = job.startedAt;
  if (job.endedAt !== undefined) snapshot.endedAt = job.endedAt;
  if (job.steps !== undefined) snapshot.steps = job.steps;
  if (job.children !== undefined) snapshot.children = job.children;
  if (job.parent !== undefined) snapshot.parent = job.parent;
  if (job.batch) snapshot.batch = true;
  return snapshot;
}
