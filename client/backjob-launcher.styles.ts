import { css } from 'lit';
import { themeStyles } from './theme.styles.js';

/** Styles of `<backjob-launcher>`: the shared theme, then its own layout. */
export const launcherStyles = [
  themeStyles,
  css`
    [part='base'] {
      display: grid;
      gap: 0.5rem;
    }

    [part='button'] {
      justify-self: start;
      color: var(--backjob-button-text-color, #ffffff);
      background: var(--backjob-button-color, var(--_indicator));
      border-color: var(--backjob-button-color, var(--_indicator));
      font-weight: 600;
      padding: 0.375rem 1rem;
    }

    @media (prefers-color-scheme: dark) {
      [part='button'] {
        color: var(--backjob-button-text-color, #0d1117);
      }
    }

    [part='error'] {
      margin: 0;
      color: var(--_failed);
      background: var(--_background);
      font-weight: 600;
    }

    [part='note'] {
      margin: 0;
      color: var(--_muted);
      background: var(--_background);
    }
  `,
];
