import { css } from 'lit';
import { themeStyles } from './theme.styles.js';

/** Styles of `<backjob-launcher>`: the shared theme, then its own layout. */
export const launcherStyles = [
  themeStyles,
  css`
    [part='base'] {
      display: grid;
      gap: 0.75rem;
    }

    [part='button'] {
      justify-self: start;
      color: var(--backjob-button-text-color, light-dark(#ffffff, #0d1117));
      background: var(--backjob-button-color, var(--_indicator));
      border-color: var(--backjob-button-color, var(--_indicator));
      font-size: var(--_size-label);
      font-weight: 600;
      padding: 0.4375rem 1.125rem;
    }

    @supports not (color: light-dark(#fff, #000)) {
      [part='button'] {
        color: var(--backjob-button-text-color, #ffffff);
      }
    }

    [part='error'],
    [part='note'] {
      display: flex;
      align-items: baseline;
      gap: 0.5rem;
      margin: 0;
      padding: 0.5rem 0.75rem;
      color: var(--_text);
      background: var(--_background);
      border: 1px solid var(--_frame);
      border-inline-start-width: 4px;
      border-radius: var(--_radius);
    }

    [part='error'] {
      color: var(--_failed);
      border-inline-start-color: var(--_failed);
      font-weight: 600;
    }

    [part='error'] .icon {
      align-self: center;
    }

    [part='note'] {
      color: var(--_muted);
      border-inline-start-color: var(--_indicator);
    }

    /* One card: the progress view and the log inside it, not two unrelated boxes. */
    [part='card'] {
      display: grid;
      gap: 0.75rem;
      padding: 0.875rem 1rem;
      color: var(--_text);
      background: var(--_background);
      border: 1px solid var(--_frame);
      border-radius: calc(var(--_radius) + 2px);
    }

    [part='card'] > * {
      margin: 0;
    }

    [part='progress']::part(base) {
      padding: 0;
      border: 0;
      background: transparent;
    }

    [part='log']::part(base) {
      background: var(--_inset);
      border-color: var(--_frame);
    }
  `,
];
