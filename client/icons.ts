/**
 * Status icons drawn beside the status words (never instead of them: a
 * state is never told by colour or shape alone). Hidden from assistive
 * technology, which reads the words; painted in `currentColor`.
 */
import { svg, type SVGTemplateResult } from 'lit';

/** What an icon shows: a job's (or a step's) state, or the live channel's. */
export type IconName = 'waiting' | 'running' | 'completed' | 'failed' | 'canceled' | 'skipped' | 'disconnected';

const paths: Record<IconName, SVGTemplateResult> = {
  // A clock.
  waiting: svg`<circle cx="8" cy="8" r="6.25"/><path d="M8 4.5V8l2.5 1.5"/>`,
  // A circle with a play mark.
  running: svg`<circle cx="8" cy="8" r="6.25"/><path d="M6.5 5.5v5l4-2.5z" fill="currentColor"/>`,
  // A circle with a check mark.
  completed: svg`<circle cx="8" cy="8" r="6.25"/><path d="M5 8.25l2 2 4-4.5"/>`,
  // A circle with a cross.
  failed: svg`<circle cx="8" cy="8" r="6.25"/><path d="M5.75 5.75l4.5 4.5M10.25 5.75l-4.5 4.5"/>`,
  // A circle with a bar: stopped.
  canceled: svg`<circle cx="8" cy="8" r="6.25"/><path d="M5 8h6"/>`,
  // A circle with an arrow jumping over: passed over.
  skipped: svg`<circle cx="8" cy="8" r="6.25"/><path d="M5 9.5a3 3 0 016 0M11 7v2.5H8.5"/>`,
  // A broken link.
  disconnected: svg`<path d="M6.5 4.5l.9-.9a2.9 2.9 0 014.1 4.1l-.9.9M9.5 11.5l-.9.9a2.9 2.9 0 01-4.1-4.1l.9-.9M3 3l10 10"/>`,
};

/** An inline SVG icon, `aria-hidden`, 1em square, in `currentColor`. */
export function icon(name: IconName): SVGTemplateResult {
  return svg`<svg part="icon" class="icon" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" focusable="false"
    fill="none" stroke="currentColor" stroke-width="1.5" stroke-linecap="round" stroke-linejoin="round">${paths[name]}</svg>`;
}
