import { css } from 'lit';
import { themeStyles } from './theme.styles.js';

/** Styles of `<backjob-progress>`: the shared theme, then its own layout. */
export const progressStyles = [
  themeStyles,
  css`
    :host {
      --_height: var(--backjob-track-height, 0.5rem);
    }

    [part='base'] {
      position: relative;
      display: grid;
      /* One column that may shrink below its content: a long word wraps instead of widening the element. */
      grid-template-columns: minmax(0, 1fr);
      gap: 0.375rem;
      padding: 0.75rem;
      color: var(--_text);
      background: var(--_background);
      border: 1px solid var(--_track);
      border-radius: var(--_radius);
    }

    .header,
    .details {
      display: flex;
      flex-wrap: wrap;
      justify-content: space-between;
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
      font-weight: 600;
    }

    [part='status'],
    [part='time'],
    [part='text'] {
      color: var(--_muted);
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
    }

    [part='track'] {
      position: relative;
      height: var(--_height);
      overflow: hidden;
      background: var(--_track);
      border-radius: calc(var(--_height) / 2);
    }

    [part='indicator'] {
      height: 100%;
      background: var(--_indicator);
      border-radius: inherit;
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
      animation: slide 1.4s ease-in-out infinite;
    }

    @keyframes slide {
      from {
        transform: translateX(-100%);
      }
      to {
        transform: translateX(250%);
      }
    }

    @media (prefers-reduced-motion: reduce) {
      [part='indicator'] {
        transition: none;
      }
      :host([indeterminate]) [part='indicator'] {
        animation: none;
        width: 100% !important;
        opacity: 0.5;
      }
    }

    [part='button'] {
      justify-self: start;
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
  `,
];
