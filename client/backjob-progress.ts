import { LitElement, html, nothing, type PropertyValues } from 'lit';
import { customElement, property, state } from 'lit/decorators.js';
import { isEnded, type JobSnapshot, type JobStatus } from '../shared/protocol.js';
import { progressStyles } from './backjob-progress.styles.js';
import { emit } from './events.js';
import { JobWatchController } from './job-watch-controller.js';
import type { Connection } from './types.js';

/** Progress milestones announced to screen readers, in percent. */
const MILESTONE_STEP = 25;
/** Least time between two polite announcements, so a fast job does not flood the reader. */
const ANNOUNCE_INTERVAL_MS = 3000;

const STATUS_WORDS: Record<JobStatus, string> = {
  waiting: 'Waiting',
  running: 'Running',
  completed: 'Completed',
  failed: 'Failed',
  canceled: 'Canceled',
};

/** `m:ss`, or `h:mm:ss` from an hour on. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

/** Why the job ended, unless the reason only repeats the status ("canceled" under "Canceled"). */
function endReason(snapshot: JobSnapshot): string | undefined {
  return snapshot.error && snapshot.error.toLowerCase() !== snapshot.status ? snapshot.error : undefined;
}

/** The job's progress as a whole percentage within 0–100 (0 while unknown). */
function percent(snapshot: JobSnapshot): number {
  return Math.round(Math.min(100, Math.max(0, snapshot.progress ?? 0)));
}

/**
 * @summary Shows a server job's progress live: a bar, the status text,
 * elapsed time and an estimate of time left, and how it ended, in words.
 *
 * @fires backjob-progress - Progress or status text changed. `detail`: `{ jobId, progress, text, snapshot }`.
 * @fires backjob-completed - The job completed. `detail`: `{ jobId, result, snapshot }`.
 * @fires backjob-failed - The job failed. `detail`: `{ jobId, reason, code, snapshot }`.
 * @fires backjob-canceled - The job was canceled. `detail`: `{ jobId, reason, snapshot }`.
 *
 * @csspart base - The container.
 * @csspart label - The accessible label, shown above the bar.
 * @csspart status - The state in words (Waiting, 42%, Completed, Failed, …).
 * @csspart track - The bar's track (the `progressbar`).
 * @csspart indicator - The filled part of the bar.
 * @csspart text - The job's status text.
 * @csspart time - Elapsed time and estimated time left.
 * @csspart error - Failure or cancel reason, or why the job can't be watched.
 * @csspart button - The cancel button.
 *
 * @cssproperty [--backjob-background=#ffffff] - Background (dark: `#161b22`).
 * @cssproperty [--backjob-text-color=#1f2328] - Text colour (dark: `#e6edf3`).
 * @cssproperty [--backjob-muted-color=#57606a] - Secondary text (dark: `#9da7b3`).
 * @cssproperty [--backjob-border-color=#8c959f] - Button border (dark: `#6e7681`).
 * @cssproperty [--backjob-track-color=#d0d7de] - Track and frame (dark: `#30363d`).
 * @cssproperty [--backjob-indicator-color=#0969da] - Filled bar while running (dark: `#4493f8`).
 * @cssproperty [--backjob-completed-color=#1a7f37] - Bar and word when completed (dark: `#3fb950`).
 * @cssproperty [--backjob-failed-color=#cf222e] - Bar and word when failed (dark: `#ff7b72`).
 * @cssproperty [--backjob-focus-color=#0969da] - Focus ring (dark: `#4493f8`).
 * @cssproperty [--backjob-radius=6px] - Corner radius.
 * @cssproperty [--backjob-track-height=0.5rem] - Height of the bar.
 */
@customElement('backjob-progress')
export class BackjobProgress extends LitElement {
  static override styles = progressStyles;

  /** Id of the job to watch. */
  @property({ attribute: 'job-id' }) jobId?: string;

  /** The job's watch token (from `start`); not needed when the page's user owns the job. */
  @property() token?: string;

  /** Shows a cancel button while the job waits or runs. */
  @property({ type: Boolean }) cancelable = false;

  /** Accessible label of the bar. Default: "Progress of ‹job name›". */
  @property() label?: string;

  /** WebSocket URL of the live channel. Default: `/backjob/ws` on this page's host. */
  @property() endpoint?: string;

  /** A connection to use instead of the page's shared one (frameworks, tests). */
  @property({ attribute: false }) connection?: Connection;

  /** The job's state, reflected for styling. Read-only. */
  @property({ reflect: true }) status?: JobStatus;

  /** Reflected while the job runs with no known progress. Read-only. */
  @property({ type: Boolean, reflect: true }) indeterminate = false;

  /**
   * Also announces what the first snapshot already shows (its milestone, or
   * how the job ended). Off by default: a page opened on jobs that ended long
   * ago must not read each one out; only changes seen while watching are
   * news. `<backjob-launcher>` sets it, since the job it just started is news
   * from its very first state (a quick one may have ended by then).
   */
  @property({ attribute: false }) announceInitial = false;

  /** Reflected while live updates can't reach the element (the connection is retrying). Read-only. */
  @property({ type: Boolean, reflect: true }) disconnected = false;

  @state() private now = Date.now();
  @state() private announcement = '';
  @state() private cancelError?: string;
  @state() private canceling = false;
  /** The cancel request under way, for the job shown when it was made; dropped when the job changes. */
  private cancelRequest?: { jobId?: string };

  private readonly watch = new JobWatchController(this);
  private clock?: ReturnType<typeof setInterval>;
  /**
   * What was already told (events, announcements), so each is told once per
   * job; `seen` once the job's first snapshot set the baseline.
   */
  private told: { jobId?: string; progressKey?: string; ended?: boolean; milestone: number; seen?: boolean } = { milestone: 0 };
  private lastAnnouncedAt = 0;
  private pendingAnnouncement?: ReturnType<typeof setTimeout>;
  private pendingEvents: Array<() => void> = [];
  /** Whether the cancel button had focus before this render. */
  private cancelHadFocus = false;
  /** The focused cancel button went away while the job had not ended (job-id switching): focus goes back when it returns. */
  private refocusCancel = false;

  /** The job's latest known state. */
  get snapshot(): JobSnapshot | undefined {
    return this.watch.snapshot;
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.stopClock();
    clearTimeout(this.pendingAnnouncement);
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('jobId')) {
      this.told = { jobId: this.jobId, milestone: 0 };
      this.announcement = '';
      clearTimeout(this.pendingAnnouncement); // a milestone of the job no longer shown
      this.cancelError = undefined;
      this.canceling = false;
      this.cancelRequest = undefined; // its outcome is about the previous job
    }
    this.watch.sync();
    const snapshot = this.watch.snapshot;
    this.status = snapshot?.status;
    this.indeterminate = snapshot?.status === 'running' && snapshot.progress === null;
    this.disconnected = this.watch.disconnected && !(snapshot && isEnded(snapshot.status));
    // Time passes on the server while the socket reconnects: the job, last seen running, keeps its clock.
    if (snapshot?.status === 'running') this.startClock();
    else this.stopClock();
    if (snapshot && snapshot.id === this.jobId) this.tell(snapshot);
    this.cancelHadFocus = this.shadowRoot?.activeElement?.getAttribute('part') === 'button';
  }

  protected override updated(): void {
    const button = this.renderRoot.querySelector<HTMLElement>('[part="button"]');
    const snapshot = this.watch.snapshot;
    const ended = Boolean(snapshot && snapshot.id === this.jobId && isEnded(snapshot.status));
    if (this.cancelHadFocus && !button) {
      // The focused cancel button went away because the job ended: focus stays
      // here, on the bar that says how it ended, rather than falling back to
      // the page's start. Gone only because the new job's snapshot is not
      // there yet (job-id changed): nothing ended; focus returns to the button.
      if (ended) this.renderRoot.querySelector<HTMLElement>('[part="track"]')?.focus();
      else this.refocusCancel = true;
    } else if (this.refocusCancel && (button || ended || this.watch.error)) {
      this.refocusCancel = false;
      // Only if focus is still nowhere: the user may have moved on meanwhile.
      const active = document.activeElement;
      if (!active || active === document.body) {
        (button ?? (ended ? this.renderRoot.querySelector<HTMLElement>('[part="track"]') : null))?.focus();
      }
    }
    // Events go out once the DOM shows what they report.
    const events = this.pendingEvents.splice(0);
    for (const fire of events) fire();
  }

  /** Queues events and announcements for what changed since last time. */
  private tell(snapshot: JobSnapshot): void {
    const told = this.told;
    // The first snapshot is where watching starts, not a change: what it
    // already shows is on screen, not news for the live region (events still fire).
    const quiet = !told.seen && !this.announceInitial;
    told.seen = true;
    const progressKey = `${snapshot.progress}|${snapshot.text}`;
    if (progressKey !== told.progressKey && !isEnded(snapshot.status)) {
      told.progressKey = progressKey;
      this.pendingEvents.push(() =>
        emit(this, 'backjob-progress', { jobId: snapshot.id, progress: snapshot.progress, text: snapshot.text, snapshot }),
      );
      const milestone = Math.floor((snapshot.progress ?? 0) / MILESTONE_STEP) * MILESTONE_STEP;
      if (milestone > told.milestone && milestone < 100) {
        told.milestone = milestone;
        if (!quiet) this.announce(`${this.accessibleLabel}: ${milestone}%`, false);
      }
    }
    if (isEnded(snapshot.status) && !told.ended) {
      told.ended = true;
      this.canceling = false;
      if (!quiet) this.announce(`${this.accessibleLabel}: ${this.endWords(snapshot)}`, true);
      this.pendingEvents.push(() => this.emitEnd(snapshot));
    }
  }

  private emitEnd(snapshot: JobSnapshot): void {
    if (snapshot.status === 'completed') {
      emit(this, 'backjob-completed', { jobId: snapshot.id, result: snapshot.result, snapshot });
    } else if (snapshot.status === 'failed') {
      emit(this, 'backjob-failed', { jobId: snapshot.id, reason: snapshot.error ?? '', code: snapshot.errorCode, snapshot });
    } else {
      emit(this, 'backjob-canceled', { jobId: snapshot.id, reason: snapshot.error ?? '', snapshot });
    }
  }

  /**
   * Puts a message in the polite live region. Milestones wait for the
   * throttle interval (the latest one wins); the end is told at once.
   */
  private announce(message: string, immediately: boolean): void {
    clearTimeout(this.pendingAnnouncement);
    const wait = immediately ? 0 : this.lastAnnouncedAt + ANNOUNCE_INTERVAL_MS - Date.now();
    if (wait <= 0) {
      this.lastAnnouncedAt = Date.now();
      this.announcement = message;
      return;
    }
    this.pendingAnnouncement = setTimeout(() => this.announce(message, true), wait);
  }

  private startClock(): void {
    // Ticks re-render; the time shown is read from the server's clock then.
    this.clock ??= setInterval(() => (this.now = Date.now()), 1000);
  }

  private stopClock(): void {
    clearInterval(this.clock);
    this.clock = undefined;
  }

  private get accessibleLabel(): string {
    return this.label || (this.watch.snapshot?.name ? `Progress of ${this.watch.snapshot.name}` : 'Job progress');
  }

  private endWords(snapshot: JobSnapshot): string {
    const words = STATUS_WORDS[snapshot.status].toLowerCase();
    const reason = endReason(snapshot);
    return reason ? `${words}: ${reason}` : words;
  }

  private statusWords(snapshot: JobSnapshot | undefined): string {
    if (this.watch.error) return 'Unavailable';
    if (!snapshot) return this.watch.disconnected ? 'Reconnecting…' : 'Connecting…';
    if (this.disconnected) return 'Reconnecting…';
    if (snapshot.status === 'running') return this.indeterminate ? 'Running' : `${percent(snapshot)}%`;
    return STATUS_WORDS[snapshot.status];
  }

  private timeWords(snapshot: JobSnapshot | undefined): string {
    if (!snapshot?.startedAt) return '';
    // `startedAt` is the server's clock: measure it against the server's now, not the browser's.
    const elapsed = snapshot.endedAt !== undefined ? snapshot.endedAt - snapshot.startedAt : this.watch.serverNow() - snapshot.startedAt;
    let words = `Elapsed ${formatDuration(elapsed)}`;
    const progress = snapshot.progress;
    if (snapshot.status === 'running' && progress !== null && progress > 0 && progress < 100 && elapsed > 0) {
      // Linear extrapolation from the rate so far: crude, but honest about being an estimate.
      words += ` · about ${formatDuration((elapsed * (100 - progress)) / progress)} left`;
    }
    return words;
  }

  private async onCancel(): Promise<void> {
    if (this.canceling) return;
    const request = (this.cancelRequest = { jobId: this.jobId });
    this.canceling = true;
    this.cancelError = undefined;
    try {
      await this.watch.cancel();
    } catch (error) {
      // The element shows another job by now: this failure is not about it.
      if (this.cancelRequest !== request) return;
      this.canceling = false;
      this.cancelError = error instanceof Error ? error.message : String(error);
    } finally {
      if (this.cancelRequest === request) this.cancelRequest = undefined;
    }
  }

  protected override render() {
    const snapshot = this.watch.snapshot;
    const ended = snapshot ? isEnded(snapshot.status) : false;
    const value = snapshot ? percent(snapshot) : 0;
    const words = this.statusWords(snapshot);
    // No known progress (not yet, or never reported, in any state): no number at all, not "0%".
    const unknown = !snapshot || snapshot.progress === null;
    // While running the words are the percentage already: said once, not "42%, 42%".
    const valueText = unknown || words === `${value}%` ? words : `${value}%, ${words}`;
    // A refusal is news to announce now; an end reason is already in the polite announcement.
    const problem = this.watch.error?.message ?? this.cancelError;
    const reason = ended && snapshot ? endReason(snapshot) : undefined;
    return html`
      <div part="base">
        <div class="header">
          <span part="label" id="label">${this.accessibleLabel}</span>
          <span part="status">${words}</span>
        </div>
        <div
          part="track"
          role="progressbar"
          tabindex="-1"
          aria-labelledby="label"
          aria-describedby="status-text"
          aria-valuemin="0"
          aria-valuemax="100"
          aria-valuenow=${unknown ? nothing : value}
          aria-valuetext=${valueText}
        >
          <div part="indicator" style="width: ${value}%"></div>
        </div>
        <div class="details" id="status-text">
          <span part="text">${snapshot?.text ?? ''}</span>
          <span part="time">${this.timeWords(snapshot)}</span>
        </div>
        ${problem ? html`<p part="error" role="alert">${problem}</p>` : nothing}
        ${reason && !problem ? html`<p part="error">${reason}</p>` : nothing}
        ${this.cancelable && snapshot && !ended
          ? html`<button
              part="button"
              type="button"
              aria-describedby="label"
              aria-disabled=${this.canceling ? 'true' : 'false'}
              @click=${this.onCancel}
            >
              ${this.canceling ? 'Canceling…' : 'Cancel'}
            </button>`
          : nothing}
        <div class="visually-hidden" aria-live="polite" aria-atomic="true">${this.announcement}</div>
      </div>
    `;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'backjob-progress': BackjobProgress;
  }
}
