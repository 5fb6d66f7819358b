import { LitElement, html, nothing, type PropertyValues } from 'lit';
import { customElement, property, query, state } from 'lit/decorators.js';
import { repeat } from 'lit/directives/repeat.js';
import { isEnded } from '../shared/protocol.js';
import { announcer } from './announcer.js';
import { logStyles } from './backjob-log.styles.js';
import { JobWatchController } from './job-watch-controller.js';
import { LocalizeController, type LocalizedTerm } from './localize.js';
import { jobTitle } from './names.js';
import type { Connection, WatchUpdate } from './types.js';

/** How close to the bottom (px) still counts as "at the tail". */
const TAIL_SLACK_PX = 8;

/** One shown line: its event seq keys it, so trimming the head re-renders nothing else. */
interface LogLine {
  seq: number;
  text: string;
}

/**
 * @summary Streams a server job's log, line by line, as text.
 *
 * Follows the newest line unless the user scrolled up; scrolling back to the
 * bottom follows again. Lines are never interpreted as HTML. Lines survive a
 * reconnect (the connection resumes where it stopped); they are dropped only
 * when the server says the history was lost and resends it.
 *
 * @csspart base - The scrolling region (`role="log"`, focusable to scroll by keyboard).
 * @csspart line - One log line.
 * @csspart empty - Shown while there is no line ("No output yet", or "No output" once the job ended).
 * @csspart error - Why the job can't be watched.
 *
 * @cssproperty [--backjob-log-height=12rem] - Height of the scrolling region.
 * @cssproperty [--backjob-log-font=ui-monospace, monospace] - Font family of the lines.
 * @cssproperty [--backjob-background=#ffffff] - Background (dark: `#161b22`).
 * @cssproperty [--backjob-text-color=#1f2328] - Text colour (dark: `#e6edf3`).
 * @cssproperty [--backjob-muted-color=#59636e] - Placeholder text (dark: `#9da7b3`).
 * @cssproperty [--backjob-frame-color=#d1d9e0] - Frame (dark: `#3d444d`).
 * @cssproperty [--backjob-focus-color=#0969da] - Focus ring (dark: `#4493f8`).
 * @cssproperty [--backjob-spacing=0.75rem] - Space after the element when another follows it.
 */
@customElement('backjob-log')
export class BackjobLog extends LitElement {
  static override styles = logStyles;

  /** Id of the job to watch. */
  @property({ attribute: 'job-id' }) jobId?: string;

  /** The job's watch token (from `start`); not needed when the page's user owns the job. */
  @property() token?: string;

  /** Most lines kept; older ones are dropped from the top. */
  @property({ type: Number, attribute: 'max-lines' }) maxLines = 1000;

  /** Accessible label of the log region. Default: "Log of ‹job title›" ("Job log" until the job is known). */
  @property() label?: string;

  /**
   * What a screen reader hears as lines arrive: `polite` (the default of
   * `role="log"`) reads each line; `summary` says now and then how many came
   * ("12 new log lines"), through the page's shared announcer, throttled with
   * everything else it says; `off` says nothing, for a log next to a
   * `<backjob-progress>` that already tells the job's story (the launcher's
   * default). The lines stay readable either way. Lines the job had before
   * the element watched it (its history, on opening a page) are never read.
   */
  @property() live: 'polite' | 'summary' | 'off' = 'polite';

  /** `light` or `dark` forces a theme; default: the page's `color-scheme` (which may follow the OS). */
  @property({ reflect: true }) theme?: 'light' | 'dark';

  /** WebSocket URL of the live channel. Default: `/backjob/ws` on this page's host. */
  @property() endpoint?: string;

  /** A connection to use instead of the page's shared one (frameworks, tests). */
  @property({ attribute: false }) connection?: Connection;

  /** Whether the view sticks to the newest line (false once the user scrolled up). */
  @state() following = true;

  @state() private lines: LogLine[] = [];

  /**
   * While lines the job had before we watched are rendered: the region is
   * `aria-live="off"` so a screen reader does not read the whole history on
   * page open; it goes back to `live` once they are on screen.
   */
  @state() private replaying = false;

  @query('[part="base"]') private region?: HTMLElement;

  private readonly watch = new JobWatchController(this, (update) => this.receive(update));
  private readonly localize = new LocalizeController(this);
  /** New lines not yet told in `summary` mode. */
  private untold = 0;
  /** Highest seq shown: a line at or below it was already delivered. */
  private lastSeq = 0;
  /** Seq of the first snapshot of this watch: lines up to it are history, not news. Unset until one came. */
  private historySeq?: number;
  /** Whether the current watch delivered anything yet (its first delivery is everything known so far). */
  private delivered = false;
  /** Pending switch back from `off` once the history is on screen. */
  private unmute?: number;
  private unmuteTimer?: ReturnType<typeof setTimeout>;

  /** The lines currently kept, oldest first. */
  get text(): string[] {
    return this.lines.map((line) => line.text);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    // Watching again later delivers everything known again: history once more.
    this.delivered = false;
    this.historySeq = undefined;
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('jobId') && changed.get('jobId') !== undefined) {
      this.clear();
      this.delivered = false;
      this.historySeq = undefined;
      // Scrolling up was about the previous job's lines: the new job's log follows its tail.
      this.following = true;
    }
    if (changed.has('maxLines')) this.lines = this.trim(this.lines);
    this.watch.sync();
  }

  protected override updated(): void {
    if (this.following && this.region) this.region.scrollTop = this.region.scrollHeight;
    // The history is rendered with the region off: go live once the browser
    // has painted it (so its accessibility tree has the lines without the
    // live region), not in the same frame.
    if (this.replaying && this.unmute === undefined) {
      const done = () => {
        this.stopUnmute();
        this.replaying = false;
      };
      this.unmute = requestAnimationFrame(() => {
        clearTimeout(this.unmuteTimer);
        this.unmuteTimer = setTimeout(done);
      });
      // No frames in a background tab: go live anyway after a while.
      this.unmuteTimer = setTimeout(done, 1_000);
    }
  }

  private receive(update: WatchUpdate): void {
    const first = !this.delivered;
    this.delivered = true;
    if (update.reset) {
      this.clear();
      // The server resends the log from the start: history again, up to this snapshot.
      this.historySeq = update.snapshot?.seq;
    } else if (update.snapshot && this.historySeq === undefined) {
      this.historySeq = update.snapshot.seq;
    }
    if (!update.lines?.length) return;
    const fresh: LogLine[] = [];
    let history = false;
    for (const event of update.lines) {
      // The connection promises no repeats; this guard keeps a view correct even if one slipped through.
      if (event.type !== 'job:log' || event.seq <= this.lastSeq) continue;
      this.lastSeq = event.seq;
      fresh.push({ seq: event.seq, text: event.line });
      // The first delivery is all the page knew already; later, lines up to the
      // first snapshot are the server replaying what happened before we watched.
      if (first || update.reset || (this.historySeq !== undefined && event.seq <= this.historySeq)) history = true;
    }
    if (!fresh.length) return;
    this.lines = this.trim([...this.lines, ...fresh]);
    if (!history && this.live === 'summary') this.summarize(fresh.length);
    if (history) {
      // More history (the server sends it page by page): wait for this page to be painted too.
      this.stopUnmute();
      this.replaying = true;
    }
  }

  /** Counts new lines for the next "N new log lines", said through the shared announcer when its turn comes. */
  private summarize(count: number): void {
    const jobId = this.jobId;
    if (!jobId) return;
    this.untold += count;
    announcer.announce({
      key: `${jobId}:log`,
      group: jobId,
      repeat: true,
      lang: this.localize.langOf('announceNewLines'),
      text: () => (this.untold && this.jobId === jobId ? this.localize.format('announceNewLines', this.untold, this.localize.number(this.untold)).text : ''),
      onSpoken: () => (this.untold = 0),
    });
  }

  private stopUnmute(): void {
    if (this.unmute !== undefined) cancelAnimationFrame(this.unmute);
    clearTimeout(this.unmuteTimer);
    this.unmute = undefined;
  }

  private trim(lines: LogLine[]): LogLine[] {
    const max = Math.max(1, Math.floor(this.maxLines) || 1);
    return lines.length > max ? lines.slice(lines.length - max) : lines;
  }

  private clear(): void {
    this.lines = [];
    this.lastSeq = 0;
    this.untold = 0;
  }

  private onScroll(): void {
    const region = this.region;
    if (!region) return;
    this.following = region.scrollHeight - region.scrollTop - region.clientHeight <= TAIL_SLACK_PX;
  }

  protected override render() {
    const error = this.watch.error;
    const snapshot = this.watch.snapshot;
    const label = this.label || (snapshot?.name ? this.localize.format('logOf', jobTitle(snapshot)).text : this.localize.term('jobLog').text);
    const problem: LocalizedTerm | undefined = error ? (this.localize.error(error.code) ?? { text: error.message, lang: 'en' }) : undefined;
    // An ended job that wrote nothing has no output, rather than none "yet".
    const empty = this.localize.term(snapshot && isEnded(snapshot.status) ? 'noOutput' : 'noOutputYet');
    const live = this.live === 'polite' && !this.replaying ? 'polite' : 'off';
    return html`
      <div part="base" role="log" aria-label=${label} aria-live=${live} tabindex="0" @scroll=${this.onScroll}>
        ${problem ? html`<div part="error">${this.localize.show(problem)}</div>` : nothing}
        ${this.lines.length === 0 && !error ? html`<div part="empty">${this.localize.show(empty)}</div>` : nothing}
        ${repeat(
          this.lines,
          (line) => line.seq,
          (line) => html`<div part="line">${line.text}</div>`,
        )}
      </div>
    `;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'backjob-log': BackjobLog;
  }
}
