import { LitElement, html, nothing, type PropertyValues } from 'lit';
import { customElement, property, state } from 'lit/decorators.js';
import { isEnded, type ChildSnapshot, type JobSnapshot, type JobStatus } from '../shared/protocol.js';
import { progressStyles } from './backjob-progress.styles.js';
import { emit } from './events.js';
import { fill } from './fill.js';
import { icon } from './icons.js';
import { childrenSummary, renderChildren, renderSteps, stepSummary } from './job-family.js';
import { JobWatchController } from './job-watch-controller.js';
import { LocalizeController, type LocalizedTerm } from './localize.js';
import { jobTitle } from './names.js';
import { ProgressSpeech } from './progress-speech.js';
import { endReason, percent, statusWords, timeWords } from './progress-words.js';
import type { Connection } from './types.js';

export { formatDuration } from './progress-words.js';

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
 * A job made of parts shows them: "Step 2 of 3: Transform" for a job with
 * steps, "3 of 40 done" for a parent or a batch, and with `show-steps` and
 * `show-children` the lists of them (a long list of children shows its first
 * `children-limit` and a "Show all" button). A step's end and children that
 * failed are said too, by the announcer's rules.
 *
 * @fires {CustomEvent<BackjobProgressDetail>} backjob-progress - Progress or status text changed.
 * @fires {CustomEvent<BackjobCompletedDetail>} backjob-completed - The job completed.
 * @fires {CustomEvent<BackjobFailedDetail>} backjob-failed - The job failed.
 * @fires {CustomEvent<BackjobCanceledDetail>} backjob-canceled - The job was canceled.
 * @fires {CustomEvent<BackjobOpenDetail>} backjob-open - The user opened a child from the list (its link or, with `openable`, its button). Cancelable: the link is then not followed.
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
 * @csspart step-summary - "Step 2 of 3: Transform" (or the step the job failed at).
 * @csspart children-summary - "3 of 40 done · 1 failed", for a parent or a batch.
 * @csspart steps - The list of steps (an `<ol>`, with `show-steps`).
 * @csspart step - One step (also `step-waiting`, `step-running`, `step-completed`, `step-failed`, `step-skipped`).
 * @csspart step-title - A step's title.
 * @csspart step-status - A step's state in words (its percentage while it runs), with its icon.
 * @csspart step-track - A running step's small bar (its percentage is what is read).
 * @csspart step-indicator - The filled part of it.
 * @csspart children - The list of children or batch members (an `<ol>`, with `show-children`).
 * @csspart child - One child (also `child-waiting`, `child-running`, `child-completed`, `child-failed`, `child-canceled`).
 * @csspart child-title - A child's title: text, or `child-link`.
 * @csspart child-link - The link (`href`) or button (`openable`) that opens a child.
 * @csspart child-status - A child's state in words (its percentage while it runs), with its icon.
 * @csspart child-track - A running child's small bar.
 * @csspart child-indicator - The filled part of it.
 * @csspart child-text - A child's status text, or why it failed.
 * @csspart children-toggle - "Show all 1,000" / "Show fewer".
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

  /** Lists the job's steps, each with its state (the current one is always named above the bar). */
  @property({ type: Boolean, attribute: 'show-steps' }) showSteps = false;

  /** Lists the job's children (or the batch's members), each with its state and progress. */
  @property({ type: Boolean, attribute: 'show-children' }) showChildren = false;

  /** How many children the list shows before a "Show all" button. Default 10. */
  @property({ type: Number, attribute: 'children-limit' }) childrenLimit = 10;

  /** A link for each child's title, `{id}` standing for the child's id (and `{parent}` for this job's): `href="/watch/{id}"`. */
  @property() href?: string;

  /** Without `href`: makes each child's title a button that fires `backjob-open`, for the page to open it. */
  @property({ type: Boolean }) openable = false;

  /** Reflected while live updates can't reach the element (the connection is retrying). Read-only. */
  @property({ type: Boolean, reflect: true }) disconnected = false;

  @state() private now = Date.now();
  @state() private cancelError?: string;
  @state() private canceling = false;
  /** The children list shows them all, not the first `childrenLimit`. */
  @state() private childrenExpanded = false;
  /** The cancel request under way, for the job shown when it was made; dropped when the job changes. */
  private cancelRequest?: { jobId?: string };

  private readonly watch = new JobWatchController(this);
  private readonly localize = new LocalizeController(this);
  private clock?: ReturnType<typeof setInterval>;
  /** Which events were fired, so each fires once per job; `seen` once the job's first snapshot set the baseline. */
  private told: { jobId?: string; progressKey?: string; ended?: boolean; seen?: boolean } = {};
  /** What screen readers were told about the job. */
  private speech?: ProgressSpeech;
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
    this.speech?.withdraw();
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('jobId')) {
      // A milestone of the job no longer shown stays unsaid.
      this.speech?.withdraw();
      const jobId = this.jobId;
      const current = () => (this.isConnected ? this.watch.snapshot : undefined);
      this.speech = jobId ? new ProgressSpeech(jobId, this.localize, () => this.accessibleLabel, current) : undefined;
      this.childrenExpanded = false;
      this.told = { jobId };
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
    const snapshot = this.watch.snapshot;
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
    this.speech?.tell(snapshot, quiet, this.disconnected);
    const jobId = snapshot.id;
    const ended = isEnded(snapshot.status);
    const progressKey = `${snapshot.progress}|${snapshot.text}`;
    if (progressKey !== told.progressKey && !ended) {
      told.progressKey = progressKey;
      this.pendingEvents.push(() => emit(this, 'backjob-progress', { jobId, progress: snapshot.progress, text: snapshot.text, snapshot }));
    }
    if (ended && !told.ended) {
      told.ended = true;
      this.canceling = false;
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

  /** The user opened a child: the page may route itself (`preventDefault()`), else its link is followed. */
  private readonly onOpen = (child: ChildSnapshot, event: MouseEvent): void => {
    // A modified click opens a new tab or window: the browser's business, not the page's.
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || !this.jobId) return;
    const detail = { jobId: child.id, parentId: this.jobId, child, ...(this.token ? { token: this.token } : {}) };
    if (!emit(this, 'backjob-open', detail, { cancelable: true })) event.preventDefault();
  };

  private readonly toggleChildren = (): void => {
    this.childrenExpanded = !this.childrenExpanded;
  };

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
    const { words, icon: iconName } = statusWords(this.localize, snapshot, {
      hasJob: Boolean(this.jobId),
      refused: Boolean(this.watch.error),
      socketDown: this.watch.disconnected,
      disconnected: this.disconnected,
      indeterminate: this.indeterminate,
    });
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
    const reason = ended && snapshot ? endReason(this.localize, snapshot) : undefined;
    const labelled = this.label || snapshot?.name ? { text: this.accessibleLabel, lang: this.localize.lang() } : this.localize.term('jobProgress');
    // Once ended, the last status text ("Totalling Jaffa (20 of 20)") is history: the state says what is true.
    const text = snapshot && !ended ? snapshot.text : '';
    const time = timeWords(this.localize, snapshot, () => this.watch.serverNow(), this.disconnected);
    const step = snapshot ? stepSummary(this.localize, snapshot) : undefined;
    const children = snapshot?.children?.length ? snapshot.children : undefined;
    const described = [step && 'step', children && 'family', (text || time.length) && 'details'].filter(Boolean).join(' ');
    // The lists of parts come last, after the job's own error and Cancel: a thousand members must not push those out of reach.
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
          aria-describedby=${described || nothing}
          aria-valuemin="0"
          aria-valuemax="100"
          aria-valuenow=${unknown ? nothing : value}
          aria-valuetext=${valueText}
        >
          <div part="indicator" ${fill(value)}></div>
        </div>
        ${step ? html`<p part="step-summary" class="summary" id="step">${this.localize.show(step)}</p>` : nothing}
        ${children ? html`<p part="children-summary" class="summary" id="family">${childrenSummary(this.localize, children)}</p>` : nothing}
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
        ${this.showSteps && snapshot?.steps?.length ? renderSteps(this.localize, snapshot.steps, this.accessibleLabel) : nothing}
        ${this.showChildren && snapshot && children
          ? renderChildren(this.localize, snapshot, {
              jobLabel: this.accessibleLabel,
              href: this.href,
              openable: this.openable,
              limit: Number.isFinite(this.childrenLimit) ? Math.max(0, Math.round(this.childrenLimit)) : 10,
              expanded: this.childrenExpanded,
              onToggle: this.toggleChildren,
              onOpen: this.onOpen,
            })
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
