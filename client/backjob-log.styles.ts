import { css } from 'lit';
import { themeStyles } from './theme.styles.js';

/** Styles of `<backjob-log>`: the shared theme, then its own layout. */
export const logStyles = [
  themeStyles,
  css`
    [part='base'] {
      box-sizing: border-box;
      height: var(--backjob-log-height, 12rem);
      overflow: auto;
      margin: 0;
      padding: 0.5rem 0.75rem;
      color: var(--_text);
      background: var(--_background);
      border: 1px solid var(--_frame);
      border-radius: var(--_radius);
      font-family: var(--backjob-log-font, ui-monospace, SFMono-Regular, Menlo, Consolas, monospace);
      font-size: var(--_size-detail);
      line-height: 1.5;
    }

    [part='line'] {
      white-space: pre-wrap;
      overflow-wrap: anywhere;
    }

    [part='empty'],
    [part='error'] {
      color: var(--_muted);
      font-family: system-ui, sans-serif;
      font-style: italic;
    }

    [part='error'] {
      color: var(--_failed);
      font-style: normal;
      font-weight: 600;
    }
  `,
];
