import { css } from 'lit';
import { familyStyles } from './job-family.styles.js';
import { themeStyles } from './theme.styles.js';

/** Styles of `<backjob-progress>`: the shared theme, then its own layout, then its parts' (steps, children). */
export const progressStyles = [
  themeStyles,
  familyStyles,
  css`
    :host {
      --_height: var(--backjob-track-height, 0.5rem);
      /* Which way "forward" is: the indeterminate sweep runs with the text. */
      --_forward: 1;
    }

    :host(:dir(rtl)) {
      --_forward: -1;
    }

    [part='base'] {
      position: relative;
      display: grid;
      /* One column that may shrink below its content: a long word wraps instead of widening the element. */
      grid-template-columns: minmax(0, 1fr);
      gap: 0.5rem;
      padding: 0.75rem 1rem;
      color: var(--_text);
      background: var(--_background);
      border: 1px solid var(--_frame);
      border-radius: var(--_radius);
    }

    .header,
    .details {
      display: flex;
      flex-wrap: wrap;
      justify-content: space-between;
      align-items: baseline;
      gap: 0.25rem 1rem;
    }

    /* Paths, URLs and ids have no break opportunity: wrap them anywhere rather than overflow (WCAG 1.4.10). */
    [part='label'],
    [part='status'],
    [part='text'],
    [part='time'],
    [part='error'] {
      min-width: 0;
      overflow-wrap: anywhere;
    }

    [part='label'] {
      font-size: var(--_size-label);
      font-weight: 600;
    }

    [part='status'] {
      display: inline-flex;
      align-items: center;
      gap: 0.375rem;
      font-size: var(--_size-status);
      font-weight: 500;
      color: var(--_muted);
      font-variant-numeric: tabular-nums;
    }

    .details {
      font-size: var(--_size-detail);
      color: var(--_muted);
    }

    [part='time'] {
      font-variant-numeric: tabular-nums;
      margin-inline-start: auto;
    }

    :host([status='running']) [part='status'] {
      color: var(--_text);
    }

    :host([status='completed']) [part='status'] {
      color: var(--_completed);
      font-weight: 600;
    }

    :host([status='failed']) [part='status'],
    [part='error'] {
      color: var(--_failed);
      font-weight: 600;
    }

    [part='error'] {
      margin: 0;
      font-size: var(--_size-status);
    }

    /* Why a job was canceled is information, not an error. */
    :host([status='canceled']) [part='error'] {
      color: var(--_muted);
      font-weight: 400;
    }

    [part='track'] {
      position: relative;
      height: var(--_height);
      overflow: hidden;
      background: var(--_track);
      /* The track's extent, ≥ 3:1 against the background; the fill is ≥ 3:1 against the empty track. */
      border: 1px solid var(--_track-border);
      border-radius: calc(var(--_height) / 2 + 1px);
    }

    [part='indicator'] {
      height: 100%;
      background: var(--_indicator);
      border-radius: calc(var(--_height) / 2);
      transition: width 200ms ease-out;
    }

    :host([status='completed']) [part='indicator'] {
      background: var(--_completed);
    }

    :host([status='failed']) [part='indicator'] {
      background: var(--_failed);
    }

    :host([status='canceled']) [part='indicator'],
    :host([disconnected]) [part='indicator'] {
      background: var(--_muted);
    }

    :host([indeterminate]) [part='indicator'] {
      width: 40% !important;
      animation: sweep 1.4s ease-in-out infinite;
    }

    /* From just before the start edge to just past the end edge, mirrored right to left. */
    @keyframes sweep {
      from {
        transform: translateX(calc(var(--_forward) * -100%));
      }
      to {
        transform: translateX(calc(var(--_forward) * 250%));
      }
    }

    @media (prefers-reduced-motion: reduce) {
      [part='indicator'] {
        transition: none;
      }
      /*
       * Still, and still unmistakably "working, amount unknown": stripes over
       * the whole track, never a solid bar that would read as done.
       */
      :host([indeterminate]) [part='indicator'] {
        animation: none;
        width: 100% !important;
        border-radius: 0;
        background: repeating-linear-gradient(
          -45deg,
          var(--_indicator) 0 0.375rem,
          transparent 0.375rem 0.75rem
        );
      }
      :host([indeterminate]:dir(rtl)) [part='indicator'] {
        background: repeating-linear-gradient(45deg, var(--_indicator) 0 0.375rem, transparent 0.375rem 0.75rem);
      }
    }

    [part='button'] {
      justify-self: start;
      font-size: var(--_size-status);
    }

    /*
     * Forced colours (Windows High Contrast) repaint every background as the
     * page's Canvas: track and fill would vanish. The track gets a border,
     * and the fill keeps a system colour the user's theme chose for it.
     */
    @media (forced-colors: active) {
      [part='track'] {
        border: 1px solid CanvasText;
      }
      [part='indicator'] {
        forced-color-adjust: none;
        background: Highlight;
      }
      :host([status]) [part='indicator'] {
        background: Highlight;
      }
      :host([status='canceled']) [part='indicator'],
      :host([disconnected]) [part='indicator'] {
        background: GrayText;
      }
    }

    @media (forced-colors: active) and (prefers-reduced-motion: reduce) {
      :host([indeterminate]) [part='indicator'] {
        background: repeating-linear-gradient(-45deg, Highlight 0 0.375rem, transparent 0.375rem 0.75rem);
      }
    }
  `,
];
