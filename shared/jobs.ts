/**
 * The job event model, shared by the server and the browser client: a job is
 * an ordered log of events, and its state is the fold of that log
 * ({@link applyEvent}). The same fold runs in the store (to keep the job row
 * current), in the live channel (snapshots) and in the browser (elements).
 * Free of Node and DOM APIs, so that both sides (and SSR) can import it.
 */

export type JobStatus = 'waiting' | 'running' | 'completed' | 'failed' | 'canceled';
export type EndStatus = 'completed' | 'failed' | 'canceled';

export const END_STATUSES: readonly EndStatus[] = ['completed', 'failed', 'canceled'];
/** Every status, in lifecycle order. */
export const JOB_STATUSES: readonly JobStatus[] = ['waiting', 'running', ...END_STATUSES];

export function isEnded(status: JobStatus): status is EndStatus {
  return status === 'completed' || status === 'failed' || status === 'canceled';
}

/** The events that end a job: after one, nothing is stored for the job (ended is final). */
export type EndEventData = Extract<JobEventData, { type: 'job:completed' | 'job:failed' | 'job:canceled' }>;

/** Whether `event` ends its job (the one test for it, on stored events and payloads alike). */
export function isEndEvent<E extends { type: string }>(event: E | undefined): event is E & EndEventData {
  return event !== undefined && (event.type === 'job:completed' || event.type === 'job:failed' || event.type === 'job:canceled');
}

/** A job id, as the server makes them (`newJobId`) and every door accepts them. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * A job name (`define(name)`, `POST /jobs { name }`): 1 to 200 characters,
 * no whitespace or control characters, since names show in logs, URLs and
 * `METHOD /path` names of route jobs, where a space would read as a separator.
 */
export const JOB_NAME_PATTERN = /^[^\s\u0000-\u001f]{1,200}$/;

export function isJobId(value: unknown): value is string {
  return typeof value === 'string' && JOB_ID_PATTERN.test(value);
}

export function isJobName(value: unknown): value is string {
  return typeof value === 'string' && JOB_NAME_PATTERN.test(value);
}

/** The payload of one job event, before the store numbers it. */
export type JobEventData =
  /** The job exists and waits (queued or delayed). Always seq 1. */
  | { type: 'job:created' }
  /** A worker picked the job up. `attempt` counts from 1; a retry after a crash starts again. */
  | { type: 'job:start'; attempt: number }
  /** Progress 0–100, or `null` for indeterminate; `text` replaces the status text when present. */
  | { type: 'job:progress'; progress?: number | null; text?: string }
  /** One line of output. */
  | { type: 'job:log'; line: string }
  | { type: 'job:completed'; result?: unknown }
  /** `code` is machine-readable (`BACKJOB_ERR_STALLED`, `BACKJOB_ERR_HTTP_403`, …). */
  | { type: 'job:failed'; reason: string; code?: string }
  | { type: 'job:canceled'; reason: string }
  /**
   * The job's named steps, declared once (a later declaration replaces them):
   * each starts `waiting`. From then on the job's progress is derived from its
   * steps (see {@link derivedProgress}).
   */
  | { type: 'job:steps'; steps: StepDeclaration[] }
  /**
   * A step moved: `state` (default `running`), its own progress 0–100 (or
   * `null`), its status text. A step that starts running completes every earlier
   * step still waiting or running.
   */
  | { type: 'job:step'; name: string; state?: StepState; progress?: number | null; text?: string }
  /**
   * What the job's parent (or batch) shows of one child: written on the
   * parent's log when the child is spawned and whenever it progresses or
   * ends (coalesced), so one subscription to the parent follows the family.
   */
  | { type: 'job:child'; child: ChildSnapshot };

export type JobEventType = JobEventData['type'];

/** A stored event: numbered per job from 1, without gaps, in the order it happened. */
export type JobEvent = JobEventData & {
  jobId: string;
  seq: number;
  /** Milliseconds since the epoch. */
  at: number;
};

export type StepState = 'waiting' | 'running' | 'completed' | 'failed' | 'skipped';

/** A step as a job declares it: `name` addresses it, `title` labels it (default: the name), `weight` (default 1) is its share of the job's progress. */
export interface StepDeclaration {
  name: string;
  title?: string;
  weight?: number;
}

/** A step as watchers see it. */
export interface StepSnapshot {
  name: string;
  title?: string;
  weight: number;
  state: StepState;
  /** The step's own progress, 0–100, or `null` while indeterminate. */
  progress: number | null;
}

/** One child job (or batch member) as its parent's snapshot shows it. */
export interface ChildSnapshot {
  id: string;
  name: string;
  title?: string;
  /** Share of the parent's progress (default 1). */
  weight: number;
  status: JobStatus;
  progress: number | null;
  text?: string;
  errorCode?: string;
}

/**
 * What anyone allowed to watch a job may see of it. Owner, credentials and
 * merge keys never leave the server.
 */
export interface JobSnapshot {
  id: string;
  /** Handler name, or `METHOD /path` for a route job: an address, not a label. */
  name: string;
  /** What people call the job ("Quarterly report"), when `define` gave it a `title`. */
  title?: string;
  status: JobStatus;
  /** 0–100, or `null` while indeterminate. */
  progress: number | null;
  text: string;
  result?: unknown;
  /** Failure or cancel reason. */
  error?: string;
  errorCode?: string;
  createdAt: number;
  startedAt?: number;
  endedAt?: number;
  /** Seq of the last event folded into this snapshot. */
  seq: number;
  /** Log lines stored so far. */
  logLines: number;
  attempt: number;
  /** The job's named steps, in order, when it declared any. */
  steps?: StepSnapshot[];
  /** The job's children (or a batch's members), in the order they were spawned. */
  children?: ChildSnapshot[];
  /** The parent job (or batch), when this job is a child (or a member). */
  parent?: string;
  /** True for a batch: a job made by `start([...])` whose only work is its members. */
  batch?: true;
}

/** A fresh snapshot, as of the `job:created` event. */
export function initialSnapshot(id: string, name: string, createdAt: number): JobSnapshot {
  return { id, name, status: 'waiting', progress: 0, text: '', createdAt, seq: 0, logLines: 0, attempt: 0 };
}

/**
 * Folds one event into a snapshot, returning a new one. Events after an end
 * state change nothing (ended is final); events at or below `snapshot.seq`
 * are already folded and are ignored, so replaying is harmless.
 */
export function applyEvent(snapshot: JobSnapshot, event: JobEvent): JobSnapshot {
  if (event.seq <= snapshot.seq || isEnded(snapshot.status)) return snapshot;
  return foldEvent({ ...snapshot }, event);
}

/**
 * The fold of {@link applyEvent} on a snapshot the caller owns: changes and
 * returns `next` itself. The caller has checked that the event is the next
 * one (`event.seq > next.seq`) and the job has not ended. A store folding a
 * run of events copies its row once and folds them all into that copy,
 * rather than copying it per event.
 */
export function foldEvent<S extends JobSnapshot>(next: S, event: JobEvent): S {
  next.seq = event.seq;
  switch (event.type) {
    case 'job:created':
      next.status = 'waiting';
      break;
    case 'job:start':
      next.status = 'running';
      next.attempt = event.attempt;
      next.startedAt ??= event.at;
      break;
    case 'job:progress':
      if (event.progress !== undefined) next.progress = event.progress;
      if (event.text !== undefined) next.text = event.text;
      break;
    case 'job:log':
      next.logLines += 1;
      break;
    case 'job:completed':
      next.status = 'completed';
      next.progress = 100;
      next.result = event.result;
      next.endedAt = event.at;
      break;
    case 'job:failed':
      next.status = 'failed';
      next.error = event.reason;
      if (event.code) next.errorCode = event.code;
      next.endedAt = event.at;
      break;
    case 'job:canceled':
      next.status = 'canceled';
      next.error = event.reason;
      next.endedAt = event.at;
      break;
    case 'job:steps':
      next.steps = event.steps.map((step) => ({
        name: step.name,
        ...(step.title === undefined ? {} : { title: step.title }),
        weight: step.weight ?? 1,
        state: 'waiting',
        progress: null,
      }));
      next.progress = derivedProgress(next);
      break;
    case 'job:step': {
      const at = next.steps?.findIndex((step) => step.name === event.name) ?? -1;
      if (at < 0) break;
      const state = event.state ?? 'running';
      next.steps = next.steps!.map((step, i) => {
        if (i === at) return { ...step, state, progress: event.progress === undefined ? step.progress : event.progress };
        if (i < at && state === 'running' && (step.state === 'waiting' || step.state === 'running')) return { ...step, state: 'completed' };
        return step;
      });
      if (event.text !== undefined) next.text = event.text;
      next.progress = derivedProgress(next);
      break;
    }
    case 'job:child': {
      const children = next.children ? [...next.children] : [];
      const at = children.findIndex((child) => child.id === event.child.id);
      // Ended is final for a child too: news of it written late (by another process) cannot revive it.
      if (at >= 0 && isEnded(children[at]!.status)) break;
      if (at < 0) children.push(event.child);
      else children[at] = event.child;
      next.children = children;
      next.progress = derivedProgress(next);
      break;
    }
  }
  return next;
}

/** What a finished part counts for in its parent's progress: done is done, however it ended. */
function partDone(state: StepState | JobStatus): boolean {
  return state === 'completed' || state === 'skipped' || state === 'failed' || state === 'canceled';
}

/**
 * A job's progress from its parts: the weighted mean of its steps (a step
 * done counts 100, a running one its own progress), or else of its children.
 * `null` (indeterminate) while nothing is known; the job's own progress when
 * it has no parts.
 */
export function derivedProgress(snapshot: Pick<JobSnapshot, 'progress' | 'steps' | 'children'>): number | null {
  const parts = snapshot.steps?.length
    ? snapshot.steps.map((step) => ({ weight: step.weight, done: partDone(step.state), progress: step.state === 'running' ? step.progress : 0 }))
    : snapshot.children?.length
      ? snapshot.children.map((child) => ({ weight: child.weight, done: partDone(child.status), progress: child.progress }))
      : null;
  if (!parts) return snapshot.progress;
  let total = 0;
  let sum = 0;
  for (const part of parts) {
    total += part.weight;
    sum += part.weight * (part.done ? 100 : (part.progress ?? 0));
  }
  return total > 0 ? Math.round((sum / total) * 100) / 100 : 0;
}
