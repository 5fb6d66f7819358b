import { LitElement, html, nothing, type PropertyValues } from 'lit';
import { customElement, property, state } from 'lit/decorators.js';
import { isEnded, type JobSnapshot, type JobStatus } from '../shared/protocol.js';
import { announcer } from './announcer.js';
import { progressStyles } from './backjob-progress.styles.js';
import { emit } from './events.js';
import { icon, type IconName } from './icons.js';
import { JobWatchController } from './job-watch-controller.js';
import { LocalizeController, type LocalizedTerm } from './localize.js';
import { jobTitle } from './names.js';
import type { Connection } from './types.js';

/** Progress milestones announced to screen readers, in percent. */
const MILESTONE_STEP = 25;

/** `m:ss`, or `h:mm:ss` from an hour on (English digits; the elements format through their language). */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

/** The job's progress as a whole percentage within 0–100 (0 while unknown). */
function percent(snapshot: JobSnapshot): number {
  return Math.round(Math.min(100, Math.max(0, snapshot.progress ?? 0)));
}

/**
 * @summary Shows a server job's progress live: a bar, the state in words with
 * an icon, the status text, elapsed time and an estimate of time left, and
 * how it ended.
 *
 * Speaks through the page's shared announcer (`announcer.ts`): the start,
 * the 25/50/75 % milestones (throttled, read as the value they have when
 * they go out), a lost and a restored connection, and the end at once.
 * Words and numbers follow the nearest `lang` (`localize.ts`).
 *
 * @fires {CustomEvent<BackjobProgressDetail>} backjob-progress - Progress or status text changed.
 * @fires {CustomEvent<BackjobCompletedDetail>} backjob-completed - The job completed.
 * @fires {CustomEvent<BackjobFailedDetail>} backjob-failed - The job failed.
 * @fires {CustomEvent<BackjobCanceledDetail>} backjob-canceled - The job was canceled.
 *
 * @csspart base - The container.
 * @csspart label - The accessible label, shown above the bar.
 * @csspart status - The state in words with its icon (Waiting, 42 %, Completed, Failed, …).
 * @csspart icon - The state's icon.
 * @csspart track - The bar's track (the `progressbar`).
 * @csspart indicator - The filled part of the bar.
 * @csspart details - The row of status text and time.
 * @csspart text - The job's status text (while it waits or runs).
 * @csspart time - Elapsed time and estimated time left.
 * @csspart error - Failure or cancel reason, or why the job can't be watched.
 * @csspart button - The cancel button.
 *
 * @cssproperty [--backjob-background=#ffffff] - Background (dark: `#161b22`).
 * @cssproperty [--backjob-text-color=#1f2328] - Text colour (dark: `#e6edf3`).
 * @cssproperty [--backjob-muted-color=#57606a] - Secondary text (dark: `#9da7b3`).
 * @cssproperty [--backjob-border-color=#8c959f] - Button border and the card's frame (dark: `#6e7681`).
 * @cssproperty [--backjob-track-color=#eaeef2] - Fill of the empty track (dark: `#262c36`).
 * @cssproperty [--backjob-track-border-color=#6e7781] - Outline of the track, ≥ 3:1 against the background (dark: `#8b949e`).
 * @cssproperty [--backjob-indicator-color=#0969da] - Filled bar while running (dark: `#4493f8`).
 * @cssproperty [--backjob-completed-color=#1a7f37] - Bar and word when completed (dark: `#3fb950`).
 * @cssproperty [--backjob-failed-color=#cf222e] - Bar and word when failed (dark: `#ff7b72`).
 * @cssproperty [--backjob-focus-color=#0969da] - Focus ring (dark: `#4493f8`).
 * @cssproperty [--backjob-radius=6px] - Corner radius.
 * @cssproperty [--backjob-track-height=0.5rem] - Height of the bar.
 * @cssproperty [--backjob-spacing=0.75rem] - Space after the element when another follows it.
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

  /** Accessible label of the bar. Default: the job's title (`define(name, fn, { title })`), else its name made readable. */
  @property() label?: string;

  /** WebSocket URL of the live channel. Default: `/backjob/ws` on this page's host. */
  @property() endpoint?: string;

  /** A connection to use instead of the page's shared one (frameworks, tests). */
  @property({ attribute: false }) connection?: Connection;

  /** `light` or `dark` forces a theme; default: the page's `color-scheme` (which may follow the OS). */
  @property({ reflect: true }) theme?: 'light' | 'dark';

  /** The job's state, reflected for styling. Read-only. */
  @property({ reflect: true }) status?: JobStatus;

  /** Reflected while the job runs with no known progress. Read-only. */
  @property({ type: Boolean, reflect: true }) indeterminate = false;

  /**
   * Also announces what the first snapshot already shows (that it started,
   * or how it ended). Off by default: a page opened on jobs that ended long
   * ago must not read each one out; only changes seen while watching are
   * news. `<backjob-launcher>` sets it, since the job it just started is news
   * from its very first state (a quick one may have ended by then).
   */
  @property({ attribute: false }) announceInitial = false;

  /** Reflected while live updates can't reach the element (the connection is retrying). Read-only. */
  @property({ type: Boolean, reflect: true }) disconnected = false;

  @state() private now = Date.now();
  @state() private cancelError?: string;
  @state() private canceling = false;
  /** The cancel request under way, for the job shown when it was made; dropped when the job changes. */
  private cancelRequest?: { jobId?: string };

  private readonly watch = new JobWatchController(this);
  private readonly localize = new LocalizeController(this);
  private clock?: ReturnType<typeof setInterval>;
  /**
   * What was already told (events, announcements), so each is told once per
   * job; `seen` once the job's first snapshot set the baseline.
   */
  private told: {
    jobId?: string;
    progressKey?: string;
    ended?: boolean;
    started?: boolean;
    disconnected?: boolean;
    milestone: number;
    seen?: boolean;
  } = { milestone: 0 };
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
    if (this.told.jobId) announcer.withdraw(`${this.told.jobId}:progress`);
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('jobId')) {
      // A milestone of the job no longer shown stays unsaid.
      if (this.told.jobId) announcer.withdraw(`${this.told.jobId}:progress`);
      this.told = { jobId: this.jobId, milestone: 0 };
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
    // The fill's width goes through the CSSOM, not a `style` attribute, which a strict CSP (`style-src 'self'`) refuses.
    const snapshot = this.watch.snapshot;
    this.renderRoot.querySelector<HTMLElement>('[part="indicator"]')?.style.setProperty('width', `${snapshot ? percent(snapshot) : 0}%`);
    const button = this.renderRoot.querySelector<HTMLElement>('[part="button"]');
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
    const jobId = snapshot.id;
    const ended = isEnded(snapshot.status);
    if (!ended && !told.started) {
      told.started = true;
      // Waiting, then running: the same key, so a quick start is said once, as "started".
      if (!quiet) this.say(jobId, snapshot.status === 'waiting' ? 'announceWaiting' : 'announceStarted');
    } else if (!ended && told.started && snapshot.status === 'running' && told.progressKey?.startsWith('waiting')) {
      this.say(jobId, 'announceStarted');
    }
    const progressKey = `${snapshot.status}|${snapshot.progress}|${snapshot.text}`;
    if (progressKey !== told.progressKey && !ended) {
      const textChanged = progressKey.slice(progressKey.indexOf('|')) !== told.progressKey?.slice(told.progressKey.indexOf('|'));
      told.progressKey = progressKey;
      if (textChanged) {
        this.pendingEvents.push(() =>
          emit(this, 'backjob-progress', { jobId, progress: snapshot.progress, text: snapshot.text, snapshot }),
        );
      }
      const milestone = Math.floor((snapshot.progress ?? 0) / MILESTONE_STEP) * MILESTONE_STEP;
      if (milestone > told.milestone && milestone < 100) {
        told.milestone = milestone;
        if (!quiet) {
          // Read when it goes out: the value then, not the milestone that queued it.
          announcer.announce({
            key: `${jobId}:progress`,
            group: jobId,
            lang: this.localize.langOf('announceProgress'),
            text: () => {
              const now = this.watch.snapshot;
              if (!this.isConnected || now?.id !== jobId || now.status !== 'running' || now.progress === null) return '';
              return this.localize.format('announceProgress', this.accessibleLabel, this.localize.percent(percent(now))).text;
            },
          });
        }
      }
    }
    if (!ended && told.seen && this.disconnected !== Boolean(told.disconnected)) {
      // Said once per page however many elements share the connection (the announcer drops repeats).
      const lost = this.localize.term('announceConnectionLost');
      if (this.disconnected) {
        announcer.announce({ key: 'connection', text: lost.text, lang: lost.lang });
      } else if (told.disconnected) {
        // A loss not said yet when the connection is back was a blip: neither is said.
        announcer.withdraw('connection', lost.text);
        const restored = this.localize.term('announceConnectionRestored');
        announcer.announce({ key: 'connection', text: () => (announcer.said('connection') === lost.text ? restored.text : ''), lang: restored.lang });
      }
      told.disconnected = this.disconnected;
    }
    if (ended && !told.ended) {
      told.ended = true;
      this.canceling = false;
      if (!quiet) {
        const status = this.localize.term(snapshot.status).text.toLowerCase();
        const term = this.localize.format('announceEnded', this.accessibleLabel, status, this.endReason(snapshot)?.text ?? '');
        announcer.announce({ key: `${jobId}:progress`, group: jobId, end: true, text: term.text, lang: term.lang });
      }
      this.pendingEvents.push(() => this.emitEnd(snapshot));
    }
  }

  /** Announces that the job waits or started (one key with its milestones: the latest wins). */
  private say(jobId: string, term: 'announceStarted' | 'announceWaiting'): void {
    const words = this.localize.format(term, this.accessibleLabel);
    announcer.announce({ key: `${jobId}:progress`, group: jobId, text: words.text, lang: words.lang });
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

  private startClock(): void {
    // Ticks re-render; the time shown is read from the server's clock then.
    this.clock ??= setInterval(() => (this.now = Date.now()), 1000);
  }

  private stopClock(): void {
    clearInterval(this.clock);
    this.clock = undefined;
  }

  private get accessibleLabel(): string {
    const snapshot = this.watch.snapshot;
    return this.label || (snapshot?.name ? jobTitle(snapshot) : this.localize.term('jobProgress').text);
  }

  /**
   * Why the job ended, unless the reason only repeats the status ("canceled"
   * under "Canceled"). A reason the server wrote for a known code is told in
   * the element's language; an app's own reason is shown as the app wrote it.
   */
  private endReason(snapshot: JobSnapshot): LocalizedTerm | undefined {
    const known = this.localize.error(snapshot.errorCode);
    if (known) return known;
    if (!snapshot.error || snapshot.error.toLowerCase() === snapshot.status) return undefined;
    return { text: snapshot.error, lang: this.localize.lang() };
  }

  /** The state in words, and the icon beside them. */
  private statusWords(snapshot: JobSnapshot | undefined): { words: LocalizedTerm; icon?: IconName } {
    const t = (key: Parameters<LocalizeController['term']>[0]) => this.localize.term(key);
    if (!this.jobId) return { words: t('noJob') };
    if (this.watch.error) return { words: t('unavailable'), icon: 'failed' };
    if (!snapshot) return this.watch.disconnected ? { words: t('reconnecting'), icon: 'disconnected' } : { words: t('connecting') };
    if (this.disconnected) return { words: t('reconnecting'), icon: 'disconnected' };
    if (snapshot.status === 'running' && !this.indeterminate) {
      return { words: { text: this.localize.percent(percent(snapshot)), lang: this.localize.lang() }, icon: 'running' };
    }
    return { words: t(snapshot.status), icon: snapshot.status };
  }

  private timeWords(snapshot: JobSnapshot | undefined): Array<string | ReturnType<LocalizeController['show']>> {
    if (!snapshot?.startedAt) return [];
    // `startedAt` is the server's clock: measure it against the server's now, not the browser's.
    const elapsed = snapshot.endedAt !== undefined ? snapshot.endedAt - snapshot.startedAt : this.watch.serverNow() - snapshot.startedAt;
    // Each sentence's values in the sentence's language: an English fallback gets English units, not Arabic ones.
    const words = [this.localize.show(this.localize.format('elapsed', this.localize.clock(elapsed, this.localize.langOf('elapsed'))))];
    const progress = snapshot.progress;
    // No estimate while updates can't arrive: the job may have moved on, and the guess would only grow.
    if (snapshot.status === 'running' && !this.disconnected && progress !== null && progress > 0 && progress < 100 && elapsed >= 1000) {
      // Linear extrapolation from the rate so far: crude, so told roughly ("about 2 minutes").
      const left = (elapsed * (100 - progress)) / progress;
      const duration = this.localize.roughDuration(left, this.localize.langOf('timeLeft'));
      words.push(' · ', this.localize.show(this.localize.format('timeLeft', duration)));
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
    const { words, icon: iconName } = this.statusWords(snapshot);
    // No known progress (not yet, or never reported, in any state): no number at all, not "0 %".
    const unknown = !snapshot || snapshot.progress === null;
    const valuePercent = this.localize.percent(value);
    // While running the words are the percentage already: said once, not "42 %, 42 %".
    const valueText = unknown || words.text === valuePercent ? words.text : `${valuePercent}, ${words.text}`;
    // A refusal is news to announce now; an end reason is already in the polite announcement.
    const refusal = this.watch.error;
    const problem: LocalizedTerm | undefined = refusal
      ? (this.localize.error(refusal.code) ?? { text: refusal.message, lang: 'en' })
      : this.cancelError
        ? { text: this.cancelError, lang: 'en' }
        : undefined;
    const reason = ended && snapshot ? this.endReason(snapshot) : undefined;
    const labelled = this.label || snapshot?.name ? { text: this.accessibleLabel, lang: this.localize.lang() } : this.localize.term('jobProgress');
    // Once ended, the last status text ("Totalling Jaffa (20 of 20)") is history: the state says what is true.
    const text = snapshot && !ended ? snapshot.text : '';
    const time = this.timeWords(snapshot);
    return html`
      <div part="base">
        <div class="header">
          <span part="label" id="label">${this.localize.show(labelled)}</span>
          <span part="status">${iconName ? icon(iconName) : nothing}<span>${this.localize.show(words)}</span></span>
        </div>
        <div
          part="track"
          role="progressbar"
          tabindex="-1"
          aria-labelledby="label"
          aria-describedby="details"
          aria-valuemin="0"
          aria-valuemax="100"
          aria-valuenow=${unknown ? nothing : value}
          aria-valuetext=${valueText}
        >
          <div part="indicator"></div>
        </div>
        ${text || time.length
          ? html`<div part="details" class="details" id="details">
              <span part="text">${text}</span>
              <span part="time">${time}</span>
            </div>`
          : nothing}
        ${problem ? html`<p part="error" role="alert">${this.localize.show(problem)}</p>` : nothing}
        ${reason && !problem ? html`<p part="error">${this.localize.show(reason)}</p>` : nothing}
        ${this.cancelable && snapshot && !ended
          ? html`<button
              part="button"
              type="button"
              aria-describedby="label"
              aria-disabled=${this.canceling ? 'true' : 'false'}
              @click=${this.onCancel}
            >
              ${this.localize.show(this.localize.term(this.canceling ? 'canceling' : 'cancel'))}
            </button>`
          : nothing}
      </div>
    `;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'backjob-progress': BackjobProgress;
  }
}
