/**
 * Colour tokens and type scale shared by every element. Each colour reads a
 * public `--backjob-…` custom property first, so a page themes all elements
 * from `:root`. The defaults follow the page, not only the OS: `light-dark()`
 * picks by the element's `color-scheme`, which it inherits from the page — a
 * page that declares `color-scheme: light dark` gets dark elements when the
 * OS is dark, a page that declares nothing (or `light`) stays light however
 * the OS is set. `theme="light"` or `theme="dark"` on an element forces one.
 *
 * Contrast (WCAG 1.4.11, ≥ 3:1): the track's outline against the
 * background, and every fill against the empty track, in both schemes;
 * forced colours use system colours (see each element's styles).
 */
import { css } from 'lit';

/** Host display, colour tokens, type scale, focus ring, button and visually-hidden helpers every element includes first. */
export const themeStyles = css`
  :host {
    display: block;
    --_background: var(--backjob-background, light-dark(#ffffff, #161b22));
    --_text: var(--backjob-text-color, light-dark(#1f2328, #e6edf3));
    --_muted: var(--backjob-muted-color, light-dark(#59636e, #9da7b3));
    --_border: var(--backjob-border-color, light-dark(#818b98, #768390));
    --_frame: var(--backjob-frame-color, light-dark(#d1d9e0, #3d444d));
    --_inset: var(--backjob-inset-color, light-dark(#f6f8fa, #0d1117));
    --_track: var(--backjob-track-color, light-dark(#eaeef2, #262c36));
    --_track-border: var(--backjob-track-border-color, light-dark(#6e7781, #8b949e));
    --_indicator: var(--backjob-indicator-color, light-dark(#0969da, #4493f8));
    --_completed: var(--backjob-completed-color, light-dark(#1a7f37, #3fb950));
    --_failed: var(--backjob-failed-color, light-dark(#cf222e, #ff7b72));
    --_focus: var(--backjob-focus-color, light-dark(#0969da, #4493f8));
    --_radius: var(--backjob-radius, 6px);
    /* Type scale: the label reads first, the state second, details last. */
    --_size-label: 1rem;
    --_size-status: 0.875rem;
    --_size-detail: 0.8125rem;
    font-size: var(--_size-status);
    line-height: 1.4;
  }

  /* Space between standalone elements that follow each other (a progress bar and its log). */
  :host(:not(:last-child)) {
    margin-block-end: var(--backjob-spacing, 0.75rem);
  }

  :host([theme='light']) {
    color-scheme: light;
  }

  :host([theme='dark']) {
    color-scheme: dark;
  }

  :host([hidden]) {
    display: none;
  }

  /* Browsers without light-dark() (before 2024): light, or dark by the OS as before. */
  @supports not (color: light-dark(#fff, #000)) {
    :host {
      --_background: var(--backjob-background, #ffffff);
      --_text: var(--backjob-text-color, #1f2328);
      --_muted: var(--backjob-muted-color, #59636e);
      --_border: var(--backjob-border-color, #818b98);
      --_frame: var(--backjob-frame-color, #d1d9e0);
      --_inset: var(--backjob-inset-color, #f6f8fa);
      --_track: var(--backjob-track-color, #eaeef2);
      --_track-border: var(--backjob-track-border-color, #6e7781);
      --_indicator: var(--backjob-indicator-color, #0969da);
      --_completed: var(--backjob-completed-color, #1a7f37);
      --_failed: var(--backjob-failed-color, #cf222e);
      --_focus: var(--backjob-focus-color, #0969da);
    }
    @media (prefers-color-scheme: dark) {
      :host(:not([theme='light'])) {
        --_background: var(--backjob-background, #161b22);
        --_text: var(--backjob-text-color, #e6edf3);
        --_muted: var(--backjob-muted-color, #9da7b3);
        --_border: var(--backjob-border-color, #768390);
        --_frame: var(--backjob-frame-color, #3d444d);
        --_inset: var(--backjob-inset-color, #0d1117);
        --_track: var(--backjob-track-color, #262c36);
        --_track-border: var(--backjob-track-border-color, #8b949e);
        --_indicator: var(--backjob-indicator-color, #4493f8);
        --_completed: var(--backjob-completed-color, #3fb950);
        --_failed: var(--backjob-failed-color, #ff7b72);
        --_focus: var(--backjob-focus-color, #4493f8);
      }
    }
  }

  .visually-hidden {
    position: absolute;
    width: 1px;
    height: 1px;
    margin: -1px;
    padding: 0;
    overflow: hidden;
    clip: rect(0 0 0 0);
    white-space: nowrap;
    border: 0;
  }

  .icon {
    flex: none;
    width: 1em;
    height: 1em;
  }

  button {
    font: inherit;
    color: var(--_text);
    background: var(--_background);
    border: 1px solid var(--_border);
    border-radius: var(--_radius);
    padding: 0.25rem 0.75rem;
    cursor: pointer;
  }

  button:focus-visible,
  [tabindex]:focus-visible {
    outline: 2px solid var(--_focus);
    outline-offset: 2px;
  }

  button[aria-disabled='true'] {
    cursor: not-allowed;
    opacity: 0.75;
  }
`;
