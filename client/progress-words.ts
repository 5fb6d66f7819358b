/**
 * The words `<backjob-progress>` shows for a job: its state (with the icon
 * beside it), the time it ran and the rough time left, and why it ended.
 */
import type { JobSnapshot } from '../shared/protocol.js';
import type { IconName } from './icons.js';
import type { LocalizeController, LocalizedTerm } from './localize.js';

/** `m:ss`, or `h:mm:ss` from an hour on (English digits; the elements format through their language). */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

/** The job's progress as a whole percentage within 0–100 (0 while unknown). */
export function percent(snapshot: JobSnapshot): number {
  return Math.round(Math.min(100, Math.max(0, snapshot.progress ?? 0)));
}

/**
 * Why the job ended, unless the reason only repeats the status ("canceled"
 * under "Canceled"). A reason the server wrote for a known code is told in
 * the element's language; an app's own reason is shown as the app wrote it.
 */
export function endReason(l: LocalizeController, snapshot: JobSnapshot): LocalizedTerm | undefined {
  const known = l.error(snapshot.errorCode);
  if (known) return known;
  if (!snapshot.error || snapshot.error.toLowerCase() === snapshot.status) return undefined;
  return { text: snapshot.error, lang: l.lang() };
}

/** What the element knows besides the snapshot. */
export interface WatchState {
  hasJob: boolean;
  refused: boolean;
  /** The socket is retrying (before or after the first snapshot). */
  socketDown: boolean;
  /** Live updates can't reach a job that has not ended. */
  disconnected: boolean;
  indeterminate: boolean;
}

/** The state in words, and the icon beside them. */
export function statusWords(l: LocalizeController, snapshot: JobSnapshot | undefined, state: WatchState): { words: LocalizedTerm; icon?: IconName } {
  if (!state.hasJob) return { words: l.term('noJob') };
  if (state.refused) return { words: l.term('unavailable'), icon: 'failed' };
  if (!snapshot) return state.socketDown ? { words: l.term('reconnecting'), icon: 'disconnected' } : { words: l.term('connecting') };
  if (state.disconnected) return { words: l.term('reconnecting'), icon: 'disconnected' };
  if (snapshot.status === 'running' && !state.indeterminate) {
    return { words: { text: l.percent(percent(snapshot)), lang: l.lang() }, icon: 'running' };
  }
  return { words: l.term(snapshot.status), icon: snapshot.status };
}

/** "Elapsed 01:05 · about 2 minutes left", measured on the server's clock (`serverNow()`, asked only for a job that started). */
export function timeWords(l: LocalizeController, snapshot: JobSnapshot | undefined, serverNow: () => number, disconnected: boolean) {
  if (!snapshot?.startedAt) return [];
  const elapsed = snapshot.endedAt !== undefined ? snapshot.endedAt - snapshot.startedAt : serverNow() - snapshot.startedAt;
  // Each sentence's values in the sentence's language: an English fallback gets English units, not Arabic ones.
  const words = [l.show(l.format('elapsed', l.clock(elapsed, l.langOf('elapsed'))))];
  const progress = snapshot.progress;
  // No estimate while updates can't arrive: the job may have moved on, and the guess would only grow.
  if (snapshot.status === 'running' && !disconnected && progress !== null && progress > 0 && progress < 100 && elapsed >= 1000) {
    // Linear extrapolation from the rate so far: crude, so told roughly ("about 2 minutes").
    const left = (elapsed * (100 - progress)) / progress;
    words.push(' · ', l.show(l.format('timeLeft', l.roughDuration(left, l.langOf('timeLeft')))));
  }
  return words;
}
