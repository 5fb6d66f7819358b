/**
 * What `<backjob-progress>` shows of a job's parts: its named steps ("Step 2
 * of 3: Transform", and the list of them) and its children or a batch's
 * members ("3 of 40 done", and the list of them, each openable to its own
 * log). Templates only: the element owns the state and the events.
 *
 * A batch may have a thousand members, each updating: the list is keyed
 * (`repeat`), and a member's row is rebuilt only when its snapshot changed
 * (`guard`: the fold replaces just the child that moved, so every other row
 * keeps its object and costs nothing).
 */
import { html, nothing, type TemplateResult } from 'lit';
import { guard } from 'lit/directives/guard.js';
import { repeat } from 'lit/directives/repeat.js';
import { isEnded, type ChildSnapshot, type JobSnapshot, type StepSnapshot, type StepState } from '../shared/protocol.js';
import { fill } from './fill.js';
import { icon } from './icons.js';
import { translationsVersion, type LocalizeController, type LocalizedTerm } from './localize.js';
import { jobTitle } from './names.js';

/** Every part the family views have, for an element that wraps `<backjob-progress>` to forward (`exportparts`). */
export const FAMILY_PARTS = [
  'step-summary',
  'children-summary',
  'steps',
  'step',
  ...(['waiting', 'running', 'completed', 'failed', 'skipped'] as const).map((state) => `step-${state}`),
  'step-title',
  'step-status',
  'step-track',
  'step-indicator',
  'children',
  'child',
  ...(['waiting', 'running', 'completed', 'failed', 'canceled'] as const).map((status) => `child-${status}`),
  'child-title',
  'child-link',
  'child-status',
  'child-track',
  'child-indicator',
  'child-text',
  'children-toggle',
];

/** How a step is called where a person reads it. */
export function stepTitle(step: Pick<StepSnapshot, 'name' | 'title'>): string {
  return step.title || step.name;
}

function whole(progress: number | null): number {
  return Math.round(Math.min(100, Math.max(0, progress ?? 0)));
}

/**
 * The step "Step 2 of 3" names: the one running, else the next one waiting
 * after those done (between two steps), else none (all done, or none begun).
 */
function currentStep(steps: StepSnapshot[]): number {
  const running = steps.findIndex((step) => step.state === 'running');
  if (running !== -1) return running;
  const next = steps.findIndex((step) => step.state === 'waiting');
  return next > 0 ? next : -1;
}

/**
 * "Step 2 of 3: Transform" while the job waits or runs; "Failed at step 2 of
 * 3: Transform" once it failed at a step; else nothing (done is told by the
 * state).
 */
export function stepSummary(l: LocalizeController, snapshot: JobSnapshot): LocalizedTerm | undefined {
  const steps = snapshot.steps;
  if (!steps?.length) return undefined;
  const total = l.number(steps.length);
  if (isEnded(snapshot.status)) {
    const failed = steps.findIndex((step) => step.state === 'failed');
    return snapshot.status === 'failed' && failed !== -1 ? l.format('failedAtStep', l.number(failed + 1), total, stepTitle(steps[failed]!)) : undefined;
  }
  const at = currentStep(steps);
  return at === -1 ? undefined : l.format('stepOf', l.number(at + 1), total, stepTitle(steps[at]!));
}

/** How many children ended, and how many of those failed. */
export function childCounts(children: readonly ChildSnapshot[]): { done: number; failed: number; total: number } {
  let done = 0;
  let failed = 0;
  for (const child of children) {
    if (isEnded(child.status)) done++;
    if (child.status === 'failed') failed++;
  }
  return { done, failed, total: children.length };
}

/** "3 of 40 done · 1 failed". */
export function childrenSummary(l: LocalizeController, children: readonly ChildSnapshot[]): Array<string | TemplateResult> {
  const { done, failed, total } = childCounts(children);
  const words = [l.show(l.format('childrenDone', done, total, l.number(done), l.number(total)))];
  if (failed) words.push(' · ', l.show(l.format('childrenFailed', failed, l.number(failed))));
  return words;
}

const STEP_ICONS = { waiting: 'waiting', running: 'running', completed: 'completed', failed: 'failed', skipped: 'skipped' } as const;

/** The steps as an ordered list: each with its state in words, and its own progress while it runs. */
export function renderSteps(l: LocalizeController, steps: readonly StepSnapshot[], jobLabel: string) {
  const lang = `${l.lang()} ${translationsVersion()}`;
  return html`<ol part="steps" id="steps" class="parts" aria-label=${l.format('stepsOf', jobLabel).text}>
    ${repeat(
      steps,
      (step) => step.name,
      (step) => guard([step, lang], () => renderStep(l, step)),
    )}
  </ol>`;
}

function renderStep(l: LocalizeController, step: StepSnapshot) {
  const running = step.state === 'running';
  const measured = running && step.progress !== null;
  const words: LocalizedTerm = measured ? { text: l.percent(whole(step.progress)), lang: l.lang() } : l.term(step.state satisfies StepState);
  return html`<li part="step step-${step.state}" class="part" data-state=${step.state} aria-current=${running ? 'step' : nothing}>
    <span part="step-title" class="part-title">${stepTitle(step)}</span>
    <span part="step-status" class="part-status ${step.state}">${icon(STEP_ICONS[step.state])}<span>${l.show(words)}</span></span>
    ${measured ? bar('step', step.progress) : nothing}
  </li>`;
}

/** A small bar, for the eye only: the percentage beside it is what is read. */
function bar(kind: 'step' | 'child', progress: number | null) {
  return html`<span part="${kind}-track" class="part-track" aria-hidden="true"><span part="${kind}-indicator" class="part-indicator" ${fill(whole(progress))}></span></span>`;
}

/** How a child's title opens it: a link (`href`), a button firing `backjob-open` (`openable`), or not at all. */
export interface ChildrenOptions {
  /** The list's accessible name is "Jobs in ‹job›" for a batch, "Jobs started by ‹job›" for a parent. */
  jobLabel: string;
  href?: string;
  openable: boolean;
  /** Shown before "Show all"; all when the list is expanded. */
  limit: number;
  expanded: boolean;
  onToggle: () => void;
  onOpen: (child: ChildSnapshot, event: MouseEvent) => void;
}

/** The link of one child: `{id}` (and `{parent}`) in the template stand for the ids. */
export function childLink(template: string, child: ChildSnapshot, parentId: string): string {
  return template.replaceAll('{id}', encodeURIComponent(child.id)).replaceAll('{parent}', encodeURIComponent(parentId));
}

/** The children as an ordered list, the first `limit` unless expanded, with the control that shows them all. */
export function renderChildren(l: LocalizeController, snapshot: JobSnapshot, options: ChildrenOptions) {
  const children = snapshot.children ?? [];
  const collapsible = children.length > options.limit;
  const shown = collapsible && !options.expanded ? children.slice(0, Math.max(0, options.limit)) : children;
  const lang = `${l.lang()} ${translationsVersion()}`;
  const name = l.format(snapshot.batch ? 'batchJobsOf' : 'childJobsOf', options.jobLabel).text;
  return html`<ol part="children" id="children" class="parts" aria-label=${name}>
      ${repeat(
        shown,
        (child) => child.id,
        (child) => guard([child, lang, snapshot.id, options.href, options.openable], () => renderChild(l, child, snapshot.id, options)),
      )}
    </ol>
    ${collapsible
      ? html`<button part="children-toggle" type="button" aria-controls="children" aria-expanded=${options.expanded ? 'true' : 'false'} @click=${options.onToggle}>
          ${l.show(options.expanded ? l.term('showFewer') : l.format('showAll', children.length, l.number(children.length)))}
        </button>`
      : nothing}`;
}

function renderChild(l: LocalizeController, child: ChildSnapshot, parentId: string, options: ChildrenOptions) {
  const title = jobTitle(child);
  const measured = child.status === 'running' && child.progress !== null;
  const words: LocalizedTerm = measured ? { text: l.percent(whole(child.progress)), lang: l.lang() } : l.term(child.status);
  const open = (event: MouseEvent) => options.onOpen(child, event);
  const name = options.href
    ? html`<a part="child-link" href=${childLink(options.href, child, parentId)} @click=${open}>${title}</a>`
    : options.openable
      ? html`<button part="child-link" type="button" class="link" @click=${open}>${title}</button>`
      : title;
  const reason = child.status === 'failed' ? l.error(child.errorCode) : undefined;
  return html`<li part="child child-${child.status}" class="part" data-job-id=${child.id} data-state=${child.status}>
    <span part="child-title" class="part-title">${name}</span>
    <span part="child-status" class="part-status ${child.status}">${icon(child.status)}<span>${l.show(words)}</span></span>
    ${measured ? bar('child', child.progress) : nothing}
    ${child.text && !isEnded(child.status) ? html`<span part="child-text" class="part-text">${child.text}</span>` : nothing}
    ${reason ? html`<span part="child-text" class="part-text">${l.show(reason)}</span>` : nothing}
  </li>`;
}
