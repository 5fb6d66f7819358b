/**
 * The events the elements fire: prefixed (plain `progress`/`error` collide
 * with native events), bubbling and composed so they leave a launcher's
 * shadow root, and typed through `HTMLElementEventMap`.
 */
import type { ChildSnapshot, JobSnapshot, StartRequest } from '../shared/protocol.js';

/** `backjob-start`: a launcher is about to send this request. Cancelable. */
export interface BackjobStartDetail {
  request: StartRequest;
}

/** `backjob-progress`: progress or status text changed. */
export interface BackjobProgressDetail {
  jobId: string;
  /** 0–100, or `null` while indeterminate. */
  progress: number | null;
  text: string;
  snapshot: JobSnapshot;
}

/** `backjob-completed`: the job completed. */
export interface BackjobCompletedDetail {
  jobId: string;
  result: unknown;
  snapshot: JobSnapshot;
}

/** `backjob-failed`: the job failed. */
export interface BackjobFailedDetail {
  jobId: string;
  reason: string;
  /** Machine-readable (`BACKJOB_ERR_STALLED`, …), when the server gave one. */
  code?: string;
  snapshot: JobSnapshot;
}

/** `backjob-canceled`: the job was canceled. */
export interface BackjobCanceledDetail {
  jobId: string;
  reason: string;
  snapshot: JobSnapshot;
}

/**
 * `backjob-open`: the user asked to open one child job (or batch member) of
 * the job shown, to follow its own log. Cancelable: a page that routes
 * itself calls `preventDefault()` and the element's link is not followed.
 */
export interface BackjobOpenDetail {
  /** The child's id. */
  jobId: string;
  /** The job it belongs to (the parent or batch shown). */
  parentId: string;
  /** The watch token the element was given for the parent, if any: the server lets it watch the parent's children too. */
  token?: string;
  child: ChildSnapshot;
}

/** Every event the elements fire, by name. */
export interface BackjobEventMap {
  'backjob-start': CustomEvent<BackjobStartDetail>;
  'backjob-progress': CustomEvent<BackjobProgressDetail>;
  'backjob-completed': CustomEvent<BackjobCompletedDetail>;
  'backjob-failed': CustomEvent<BackjobFailedDetail>;
  'backjob-canceled': CustomEvent<BackjobCanceledDetail>;
  'backjob-open': CustomEvent<BackjobOpenDetail>;
}

/**
 * Dispatches a bubbling, composed event from `target`. Returns false when a
 * listener canceled it (only meaningful with `cancelable`).
 */
export function emit<K extends keyof BackjobEventMap>(
  target: EventTarget,
  name: K,
  detail: BackjobEventMap[K]['detail'],
  options: { cancelable?: boolean } = {},
): boolean {
  return target.dispatchEvent(
    new CustomEvent(name, { detail, bubbles: true, composed: true, cancelable: options.cancelable ?? false }),
  );
}

// They bubble out of the element and its shadow roots, up to the document and window.
declare global {
  interface HTMLElementEventMap extends BackjobEventMap {}
  interface DocumentEventMap extends BackjobEventMap {}
  interface WindowEventMap extends BackjobEventMap {}
}
