import { css } from 'lit';

/**
 * Styles of a job's parts in `<backjob-progress>`: the summaries under the
 * bar, and the lists of steps and children. Every state is told in words
 * beside its icon; colour only repeats it.
 */
export const familyStyles = css`
  .summary {
    margin: 0;
    font-size: var(--_size-detail);
    color: var(--_muted);
    overflow-wrap: anywhere;
  }

  [part='step-summary'] {
    color: var(--_text);
    font-weight: 500;
  }

  .parts {
    display: grid;
    gap: 0.25rem;
    margin: 0;
    padding: 0;
    list-style: none;
    font-size: var(--_size-detail);
  }

  .part {
    display: flex;
    flex-wrap: wrap;
    align-items: center;
    gap: 0.125rem 0.75rem;
    padding: 0.25rem 0;
    border-block-start: 1px solid var(--_frame);
  }

  .part-title {
    flex: 1 1 10rem;
    min-width: 0;
    overflow-wrap: anywhere;
  }

  [aria-current='step'] > .part-title {
    font-weight: 600;
  }

  .part-status {
    display: inline-flex;
    align-items: center;
    gap: 0.375rem;
    color: var(--_muted);
    font-variant-numeric: tabular-nums;
  }

  .part-status.running {
    color: var(--_text);
  }

  .part-status.completed {
    color: var(--_completed);
  }

  .part-status.failed {
    color: var(--_failed);
    font-weight: 600;
  }

  .part-track {
    flex: 0 0 4rem;
    height: 0.375rem;
    overflow: hidden;
    background: var(--_track);
    border: 1px solid var(--_track-border);
    border-radius: 0.25rem;
  }

  .part-indicator {
    display: block;
    height: 100%;
    background: var(--_indicator);
  }

  .part-text {
    flex-basis: 100%;
    color: var(--_muted);
    overflow-wrap: anywhere;
  }

  .part a {
    color: var(--_indicator);
  }

  /* A button that reads as the link it stands for. */
  button.link {
    padding: 0;
    border: none;
    background: none;
    color: var(--_indicator);
    text-decoration: underline;
    text-align: start;
  }

  [part='children-toggle'] {
    justify-self: start;
    font-size: var(--_size-detail);
  }

  @media (forced-colors: active) {
    .part-status.completed,
    .part-status.failed {
      color: CanvasText;
    }
    .part-track {
      border-color: CanvasText;
    }
    .part-indicator {
      forced-color-adjust: none;
      background: Highlight;
    }
  }
`;
