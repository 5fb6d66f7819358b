/**
 * Colour tokens shared by every element. Each reads a public
 * `--backjob-…` custom property first, so a page themes all elements from
 * `:root`; the defaults switch with `prefers-color-scheme`. The elements
 * paint their own background so text keeps its contrast on any page.
 */
import { css } from 'lit';

/** Host display, colour tokens, focus ring, button and visually-hidden helpers every element includes first. */
export const themeStyles = css`
  :host {
    display: block;
    --_background: var(--backjob-background, #ffffff);
    --_text: var(--backjob-text-color, #1f2328);
    --_muted: var(--backjob-muted-color, #57606a);
    --_border: var(--backjob-border-color, #8c959f);
    --_track: var(--backjob-track-color, #d0d7de);
    --_indicator: var(--backjob-indicator-color, #0969da);
    --_completed: var(--backjob-completed-color, #1a7f37);
    --_failed: var(--backjob-failed-color, #cf222e);
    --_focus: var(--backjob-focus-color, #0969da);
    --_radius: var(--backjob-radius, 6px);
    color-scheme: light;
  }

  :host([hidden]) {
    display: none;
  }

  @media (prefers-color-scheme: dark) {
    :host {
      --_background: var(--backjob-background, #161b22);
      --_text: var(--backjob-text-color, #e6edf3);
      --_muted: var(--backjob-muted-color, #9da7b3);
      --_border: var(--backjob-border-color, #6e7681);
      --_track: var(--backjob-track-color, #30363d);
      --_indicator: var(--backjob-indicator-color, #4493f8);
      --_completed: var(--backjob-completed-color, #3fb950);
      --_failed: var(--backjob-failed-color, #ff7b72);
      --_focus: var(--backjob-focus-color, #4493f8);
      color-scheme: dark;
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
