import { LitElement, html, nothing, type PropertyValues } from 'lit';
import { customElement, property, query, state } from 'lit/decorators.js';
import { repeat } from 'lit/directives/repeat.js';
import { logStyles } from './backjob-log.styles.js';
import { JobWatchController } from './job-watch-controller.js';
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
 * @csspart empty - Shown while there is no line yet.
 * @csspart error - Why the job can't be watched.
 *
 * @cssproperty [--backjob-log-height=12rem] - Height of the scrolling region.
 * @cssproperty [--backjob-log-font=ui-monospace, monospace] - Font family of the lines.
 * @cssproperty [--backjob-background=#ffffff] - Background (dark: `#161b22`).
 * @cssproperty [--backjob-text-color=#1f2328] - Text colour (dark: `#e6edf3`).
 * @cssproperty [--backjob-muted-color=#57606a] - Placeholder text (dark: `#9da7b3`).
 * @cssproperty [--backjob-track-color=#d0d7de] - Frame (dark: `#30363d`).
 * @cssproperty [--backjob-focus-color=#0969da] - Focus ring (dark: `#4493f8`).
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

  /** Accessible label of the log region. Default: "Log of ‹job name›" ("Job log" until the name is known). */
  @property() label?: string;

  /**
   * Whether a screen reader reads new lines as they arrive: `polite` (the
   * default of `role="log"`) or `off`, for a chatty log next to a
   * `<backjob-progress>` that already announces milestones and the end. The
   * lines stay readable either way. Lines the job had before the element
   * watched it (its history, on opening a page) are shown without being read.
   */
  @property() live: 'polite' | 'off' = 'polite';

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
    if (history) {
      // More history (the server sends it page by page): wait for this page to be painted too.
      this.stopUnmute();
      this.replaying = true;
    }
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
  }

  private onScroll(): void {
    const region = this.region;
    if (!region) return;
    this.following = region.scrollHeight - region.scrollTop - region.clientHeight <= TAIL_SLACK_PX;
  }

  protected override render() {
    const error = this.watch.error;
    const name = this.watch.snapshot?.name;
    const label = this.label || (name ? `Log of ${name}` : 'Job log');
    return html`
      <div part="base" role="log" aria-label=${label} aria-live=${this.live === 'off' || this.replaying ? 'off' : 'polite'} tabindex="0" @scroll=${this.onScroll}>
        ${error ? html`<div part="error">${error.message}</div>` : nothing}
        ${this.lines.length === 0 && !error ? html`<div part="empty">No output yet</div>` : nothing}
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
