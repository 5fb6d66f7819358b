import type { JobEvent } from '../../shared/protocol.js';

/**
 * Progress is latest-wins: of the progress events in one page read from the
 * store, only the last is sent, carrying the latest `progress` and the latest
 * `text` of the page, and progress already folded into the subscription's
 * snapshot is dropped. A reader that fell behind catches up on state without
 * replaying every tick. Log, start and end events always pass, in order.
 */
export function coalesceProgress(events: JobEvent[], snapshotSeq: number): JobEvent[] {
  let lastProgress = -1;
  let progress: number | null | undefined;
  let text: string | undefined;
  events.forEach((event, i) => {
    if (event.type !== 'job:progress' || event.seq <= snapshotSeq) return;
    lastProgress = i;
    if (event.progress !== undefined) progress = event.progress;
    if (event.text !== undefined) text = event.text;
  });
  const out: JobEvent[] = [];
  events.forEach((event, i) => {
    if (event.type !== 'job:progress') out.push(event);
    else if (i === lastProgress) {
      const merged = { ...event };
      if (progress !== undefined) merged.progress = progress;
      if (text !== undefined) merged.text = text;
      out.push(merged);
    }
  });
  return out;
}
