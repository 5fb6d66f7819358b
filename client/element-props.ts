/**
 * What the framework declarations (react.ts, vue.ts) say of each element:
 * the properties a template may set, and the events each one fires. Derived
 * from the element classes and `BackjobEventMap`, so they follow the elements.
 */
import type { LitElement } from 'lit';
import type { BackjobJobs } from './backjob-jobs.js';
import type { BackjobLauncher } from './backjob-launcher.js';
import type { BackjobLog } from './backjob-log.js';
import type { BackjobProgress } from './backjob-progress.js';
import type { BackjobEventMap } from './events.js';

/** The public properties an element adds to LitElement (not its methods), each optional: what a template may set. */
export type ElementProperties<E extends LitElement> = {
  [K in Exclude<keyof E, keyof LitElement> as E[K] extends (...args: never[]) => unknown ? never : K]?: E[K];
};

/** The events `<backjob-progress>` fires. */
export type ProgressEventName = 'backjob-progress' | 'backjob-completed' | 'backjob-failed' | 'backjob-canceled' | 'backjob-open';

/** Each element's class and the names of the events it fires (a launcher's include its progress view's, which bubble out). */
export interface BackjobElements {
  'backjob-progress': { element: BackjobProgress; events: ProgressEventName };
  'backjob-log': { element: BackjobLog; events: never };
  'backjob-launcher': { element: BackjobLauncher; events: ProgressEventName | 'backjob-start' };
  'backjob-jobs': { element: BackjobJobs; events: never };
}

/** A listener of one event, given the event as its CustomEvent type. */
export type BackjobListener<N extends keyof BackjobEventMap> = (event: BackjobEventMap[N]) => void;
