import { css } from 'lit';
import { themeStyles } from './theme.styles.js';

/** Styles of `<backjob-jobs>`: the shared theme, then a card with a table that scrolls on its own when narrow. */
export const jobsStyles = [
  themeStyles,
  css`
    [part='base'] {
      display: grid;
      grid-template-columns: minmax(0, 1fr);
      gap: 0.75rem;
      padding: 0.75rem 1rem;
      color: var(--_text);
      background: var(--_background);
      border: 1px solid var(--_frame);
      border-radius: var(--_radius);
    }

    .header {
      display: flex;
      flex-wrap: wrap;
      justify-content: space-between;
      align-items: baseline;
      gap: 0.5rem 1rem;
    }

    h2 {
      margin: 0;
      font-size: var(--_size-label);
      font-weight: 600;
    }

    .filter {
      display: inline-flex;
      align-items: baseline;
      gap: 0.5rem;
      color: var(--_muted);
    }

    select {
      font: inherit;
      color: var(--_text);
      background: var(--_background);
      border: 1px solid var(--_border);
      border-radius: var(--_radius);
      padding: 0.125rem 0.5rem;
    }

    select:focus-visible,
    a:focus-visible {
      outline: 2px solid var(--_focus);
      outline-offset: 2px;
    }

    /* A wide table scrolls inside the card rather than widening the page (WCAG 1.4.10). */
    .scroll {
      overflow-x: auto;
      /* The containing block of the actions header's visually hidden (absolute) word: else it is not clipped and widens the page. */
      position: relative;
    }

    table {
      width: 100%;
      border-collapse: collapse;
    }

    th,
    td {
      padding: 0.375rem 0.5rem;
      text-align: start;
      vertical-align: baseline;
      border-block-end: 1px solid var(--_frame);
    }

    thead th {
      font-size: var(--_size-detail);
      font-weight: 600;
      color: var(--_muted);
    }

    tbody th {
      font-weight: 500;
      /* Not "anywhere": that lets the table squeeze the name column to one letter wide while the others keep theirs. */
      overflow-wrap: break-word;
    }

    tbody tr:last-child > * {
      border-block-end: none;
    }

    a {
      color: var(--_indicator);
    }

    .family {
      display: block;
      font-weight: 400;
      font-size: var(--_size-detail);
      color: var(--_muted);
    }

    .number {
      font-variant-numeric: tabular-nums;
      white-space: nowrap;
    }

    /* The word sets the baseline the row's other cells align to; an icon (no baseline of its own) would set it by its bottom edge. */
    .status {
      display: inline-flex;
      align-items: baseline;
      gap: 0.375rem;
      white-space: nowrap;
    }

    .status > .icon {
      align-self: center;
    }

    .status.completed {
      color: var(--_completed);
    }

    .status.failed {
      color: var(--_failed);
    }

    .empty,
    .note {
      margin: 0;
      color: var(--_muted);
    }

    .error {
      margin: 0;
      color: var(--_failed);
    }

    .more {
      justify-self: start;
    }

    @media (forced-colors: active) {
      .status.completed,
      .status.failed {
        color: CanvasText;
      }
    }
  `,
];
