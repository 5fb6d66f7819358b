import { LitElement, html, nothing, type PropertyValues } from 'lit';
import { customElement, property, state } from 'lit/decorators.js';
import { JOB_STATUSES, isEnded, type JobSnapshot, type JobStatus } from '../shared/protocol.js';
import { announcer } from './announcer.js';
import { jobsStyles } from './backjob-jobs.styles.js';
import { getConnection } from './connection.js';
import { icon } from './icons.js';
import { childrenSummary, stepSummary } from './job-family.js';
import { LocalizeController } from './localize.js';
import { jobTitle } from './names.js';
import type { Connection, ConnectionState, JobList, ListUpdate } from './types.js';

/** Whether a job belongs in a list filtered to `filter` ('' for every status). */
function matches(job: JobSnapshot, filter: JobStatus | ''): boolean {
  return filter === '' || job.status === filter;
}

/** The filter a `status` attribute asks for: a known status, else every status. */
function filterOf(status: string | undefined): JobStatus | '' {
  return JOB_STATUSES.includes(status as JobStatus) ? (status as JobStatus) : '';
}

/** Newest first, as the server lists them. */
function newestFirst(a: JobSnapshot, b: JobSnapshot): number {
  return b.createdAt - a.createdAt;
}

/**
 * @summary A live table of the signed-in user's own jobs: name, status,
 * progress, when each started and how long it ran, with cancel where it
 * still can be. The server pushes every change (a new job, its progress,
 * its end) over the page's shared connection, so nothing polls.
 *
 * Another user's jobs never appear: the server lists the socket's own
 * principal's jobs only. A page nobody is signed in to shows a note instead.
 * Words, dates and numbers follow the nearest `lang` (`localize.ts`).
 *
 * @csspart base - The container.
 * @csspart header - The row above the table: its title and the filter.
 * @csspart title - The list's name (its `label`).
 * @csspart filter - The status filter (a `select`).
 * @csspart table - The table.
 * @csspart row - One job's row.
 * @csspart name - A job's name, or its link.
 * @csspart family - Under a job's name: the step it is at ("Step 2 of 3: Transform"), or how many of its children or batch members are done ("3 of 40 done").
 * @csspart status - A job's state in words, with its icon.
 * @csspart icon - A state's icon.
 * @csspart cancel-button - A row's cancel button.
 * @csspart more-button - Loads the next page.
 * @csspart empty - The note when there is nothing to list, or nobody signed in.
 * @csspart error - Why the list or a cancel failed.
 *
 * @cssproperty [--backjob-background=#ffffff] - Background (dark: `#161b22`).
 * @cssproperty [--backjob-text-color=#1f2328] - Text colour (dark: `#e6edf3`).
 * @cssproperty [--backjob-muted-color=#59636e] - Secondary text (dark: `#9da7b3`).
 * @cssproperty [--backjob-frame-color=#d1d9e0] - The card's frame and the rules between rows (dark: `#3d444d`).
 * @cssproperty [--backjob-completed-color=#1a7f37] - A completed job's word (dark: `#3fb950`).
 * @cssproperty [--backjob-failed-color=#cf222e] - A failed job's word (dark: `#ff7b72`).
 * @cssproperty [--backjob-focus-color=#0969da] - Focus ring (dark: `#4493f8`).
 * @cssproperty [--backjob-radius=6px] - Corner radius.
 */
@customElement('backjob-jobs')
export class BackjobJobs extends LitElement {
  static override styles = jobsStyles;

  /** Accessible name and title of the list. Default: "Your jobs", in the page's language. */
  @property() label?: string;

  /** Only jobs in this state at first (`waiting`, `running`, `completed`, `failed`, `canceled`); the user can change it. Default: all. */
  @property() status?: JobStatus;

  /** Jobs per page. Default 10, at most 100. */
  @property({ type: Number, attribute: 'page-size' }) pageSize = 10;

  /** A link for each job's name, with `{id}` standing for the job's id: `href="/jobs/{id}"`. Default: no link. */
  @property() href?: string;

  /** Offers a cancel button on jobs that wait or run. */
  @property({ type: Boolean }) cancelable = true;

  /** WebSocket URL of the live channel. Default: `/backjob/ws` on this page's host. */
  @property() endpoint?: string;

  /** A connection to use instead of the page's shared one (frameworks, tests). */
  @property({ attribute: false }) connection?: Connection;

  /** `light` or `dark` forces a theme; default: the page's `color-scheme`. */
  @property({ reflect: true }) theme?: 'light' | 'dark';

  /** The jobs shown, newest first. Read-only. */
  @state() jobs: JobSnapshot[] = [];
  @state() private filter: JobStatus | '' = '';
  @state() private next?: string;
  @state() private loading = false;
  @state() private errorCode?: string;
  @state() private connectionState?: ConnectionState;
  @state() private now = Date.now();
  @state() private canceling = new Set<string>();

  private readonly localize = new LocalizeController(this);
  private list?: { source: Connection; list: JobList };
  /** Each load gets a number: an answer for an older one (the filter changed since) is dropped. */
  private generation = 0;
  private clock?: ReturnType<typeof setInterval>;
  /** The button that had focus before this render, and where focus belongs if the render removes it. */
  private focusBefore?: { button: Element; jobId?: string; rows: number };

  override connectedCallback(): void {
    super.connectedCallback();
    this.filter = filterOf(this.status);
    this.open();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.list?.list.close();
    this.list = undefined;
    clearInterval(this.clock);
    this.clock = undefined;
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    const focused = this.shadowRoot?.activeElement;
    this.focusBefore =
      focused?.matches('[part~="cancel-button"], [part~="more-button"]')
        ? { button: focused, jobId: focused.closest('tr')?.dataset.jobId, rows: this.shadowRoot!.querySelectorAll('tbody tr').length }
        : undefined;
    let reload = changed.has('pageSize') && this.hasUpdated;
    if (changed.has('status') && filterOf(this.status) !== this.filter) {
      this.filter = filterOf(this.status);
      reload = true;
    }
    if ((changed.has('connection') || changed.has('endpoint')) && this.list && this.list.source !== this.source()) {
      this.list.list.close();
      this.list = undefined;
      this.open(); // loads
    } else if (reload) {
      void this.load();
    }
    // Durations of running jobs tick; nothing ticks when nothing runs.
    const running = this.jobs.some((job) => job.status === 'running');
    // A page that arrives after removal renders too: a removed list starts no clock (disconnectedCallback would never stop it).
    if (running && !this.clock && this.isConnected) this.clock = setInterval(() => (this.now = Date.now()), 1000);
    if (!running && this.clock) {
      clearInterval(this.clock);
      this.clock = undefined;
    }
  }

  protected override updated(): void {
    // A job that ends takes its cancel button, the last page "Show more": focus would fall to the page's body.
    const before = this.focusBefore;
    this.focusBefore = undefined;
    if (!before || before.button.isConnected || this.shadowRoot!.activeElement) return;
    const rows = [...this.shadowRoot!.querySelectorAll<HTMLTableRowElement>('tbody tr')];
    const row = before.jobId ? rows.find((tr) => tr.dataset.jobId === before.jobId) : rows[before.rows];
    (row?.querySelector('th') ?? this.shadowRoot!.getElementById('title'))?.focus();
  }

  private source(): Connection {
    return this.connection ?? getConnection(this.endpoint);
  }

  private open(): void {
    if (this.list) return;
    const source = this.source();
    this.list = { source, list: source.listJobs((update) => this.onUpdate(update)) };
    void this.load();
  }

  /** Jobs per page: `pageSize` within 1–100, or 10 when it is not a number (`page-size="ten"`). */
  private pageLimit(): number {
    return Number.isFinite(this.pageSize) ? Math.min(100, Math.max(1, Math.round(this.pageSize))) : 10;
  }

  /** Reads the first page (or as many jobs as are shown, after a reconnect) for the current filter. */
  private async load(keep = false): Promise<void> {
    if (!this.list) return;
    const generation = ++this.generation;
    const limit = keep ? Math.min(100, Math.max(this.jobs.length, this.pageLimit())) : this.pageLimit();
    this.loading = true;
    try {
      const page = await this.list.list.page({ limit, ...(this.filter ? { status: [this.filter] } : {}) });
      if (generation !== this.generation) return;
      this.jobs = page.jobs;
      this.next = page.next;
      this.errorCode = undefined;
    } catch (error) {
      if (generation === this.generation) this.errorCode = (error as { code?: string }).code ?? 'BACKJOB_ERR_INTERNAL';
    } finally {
      if (generation === this.generation) this.loading = false;
    }
  }

  private async more(): Promise<void> {
    if (!this.list || !this.next) return;
    const generation = this.generation;
    this.loading = true;
    try {
      const page = await this.list.list.page({ limit: this.pageLimit(), before: this.next, ...(this.filter ? { status: [this.filter] } : {}) });
      if (generation !== this.generation) return;
      const known = new Set(this.jobs.map((job) => job.id));
      this.jobs = [...this.jobs, ...page.jobs.filter((job) => !known.has(job.id))];
      this.next = page.next;
    } catch (error) {
      this.errorCode = (error as { code?: string }).code ?? 'BACKJOB_ERR_INTERNAL';
    } finally {
      if (generation === this.generation) this.loading = false;
    }
  }

  private onUpdate(update: ListUpdate): void {
    if (update.connection) {
      this.tellConnection(this.connectionState, update.connection);
      this.connectionState = update.connection;
    }
    if (update.resync) void this.load(true);
    if (!update.changed) return;
    let jobs = this.jobs;
    const oldest = jobs.at(-1);
    for (const job of update.changed) {
      const at = jobs.findIndex((known) => known.id === job.id);
      if (at !== -1) {
        jobs = matches(job, this.filter) ? jobs.map((known, i) => (i === at ? job : known)) : jobs.filter((_, i) => i !== at);
      } else if (matches(job, this.filter) && (!this.next || !oldest || job.createdAt >= oldest.createdAt)) {
        // New (or newly matching) and within what is shown: beyond the last row it belongs to a later page.
        jobs = [...jobs, job].sort(newestFirst);
      }
    }
    this.jobs = jobs;
  }

  /**
   * Says a lost and a restored connection through the page's one announcer,
   * with the key `<backjob-progress>` uses: said once however many elements
   * share the socket, and a loss back before its turn not at all. (The note's
   * own text would not be read: it comes into the page with it.)
   */
  private tellConnection(was: ConnectionState | undefined, now: ConnectionState): void {
    const lost = this.localize.term('announceConnectionLost');
    if (now === 'reconnecting' && was !== 'reconnecting') {
      announcer.announce({ key: 'connection', text: lost.text, lang: lost.lang });
    } else if (was === 'reconnecting' && now === 'open') {
      announcer.withdraw('connection', lost.text);
      const restored = this.localize.term('announceConnectionRestored');
      announcer.announce({ key: 'connection', text: () => (announcer.said('connection') === lost.text ? restored.text : ''), lang: restored.lang });
    }
  }

  private async cancel(job: JobSnapshot): Promise<void> {
    if (!this.list) return;
    this.canceling = new Set(this.canceling).add(job.id);
    try {
      await this.list.source.cancel(job.id);
    } catch (error) {
      this.errorCode = (error as { code?: string }).code ?? 'BACKJOB_ERR_INTERNAL';
    } finally {
      const canceling = new Set(this.canceling);
      canceling.delete(job.id);
      this.canceling = canceling;
    }
  }

  private onFilter(event: Event): void {
    const value = (event.target as HTMLSelectElement).value;
    this.filter = JOB_STATUSES.includes(value as JobStatus) ? (value as JobStatus) : '';
    this.next = undefined;
    void this.load();
  }

  override render() {
    const l = this.localize;
    const label = this.label || l.term('yourJobs').text;
    const lang = this.label ? nothing : l.differs(l.langOf('yourJobs')) ? l.langOf('yourJobs') : nothing;
    return html`<section part="base" aria-labelledby="title" aria-busy=${this.loading ? 'true' : 'false'}>
      <div part="header" class="header">
        <h2 part="title" id="title" tabindex="-1" lang=${lang}>${label}</h2>
        <label class="filter">
          ${l.show(l.term('filterLabel'))}
          <select part="filter" .value=${this.filter} @change=${this.onFilter}>
            <option value="">${l.term('allJobs').text}</option>
            ${JOB_STATUSES.map((status) => html`<option value=${status} ?selected=${this.filter === status}>${l.term(status).text}</option>`)}
          </select>
        </label>
      </div>
      ${this.renderBody()}
    </section>`;
  }

  private renderBody() {
    const l = this.localize;
    if (this.errorCode === 'BACKJOB_ERR_UNAUTHORIZED') return html`<p part="empty" class="empty">${l.show(l.term('signInForJobs'))}</p>`;
    const error = this.errorCode ? (l.error(this.errorCode) ?? l.term('unavailable')) : undefined;
    return html`
      ${error ? html`<p part="error" class="error" role="alert">${l.show(error)}</p>` : nothing}
      ${this.connectionState === 'reconnecting' ? html`<p class="note">${l.show(l.term('reconnecting'))}</p>` : nothing}
      ${this.jobs.length === 0 && !this.loading
        ? error
          ? nothing // Unread is not empty: "No jobs" would be a guess.
          : html`<p part="empty" class="empty">${l.show(l.term('noJobs'))}</p>`
        : html`<div class="scroll">
            <table part="table" aria-labelledby="title">
              <thead>
                <tr>
                  ${(['columnJob', 'columnStatus', 'columnProgress', 'columnStarted', 'columnDuration'] as const).map(
                    (key) => html`<th scope="col">${l.show(l.term(key))}</th>`,
                  )}
                  ${this.cancelable ? html`<th scope="col"><span class="visually-hidden">${l.show(l.term('columnActions'))}</span></th>` : nothing}
                </tr>
              </thead>
              <tbody>
                ${this.jobs.map((job) => this.renderRow(job))}
              </tbody>
            </table>
          </div>`}
      ${this.next ? html`<button part="more-button" class="more" ?disabled=${this.loading} @click=${() => void this.more()}>${l.show(l.term('showMore'))}</button>` : nothing}
    `;
  }

  /** A "—" to see, and words to hear (a screen reader reads the dash as "em dash"). */
  private blank(key: 'notAvailable' | 'notStarted') {
    return html`<span aria-hidden="true">—</span><span class="visually-hidden">${this.localize.show(this.localize.term(key))}</span>`;
  }

  /** A job made of parts says where it is, if the snapshot tells (a list page may leave the children out). */
  private renderFamily(job: JobSnapshot) {
    const step = stepSummary(this.localize, job);
    const words = job.children?.length ? childrenSummary(this.localize, job.children) : step ? [this.localize.show(step)] : undefined;
    return words ? html`<span part="family" class="family">${words}</span>` : nothing;
  }

  private renderRow(job: JobSnapshot) {
    const l = this.localize;
    const title = jobTitle(job);
    const offset = this.list?.source.clockOffset ?? 0;
    const ranFor = job.startedAt === undefined ? undefined : (job.endedAt ?? this.now + offset) - job.startedAt;
    const progress = job.status === 'completed' ? 100 : job.progress;
    const link = this.href ? this.href.replaceAll('{id}', encodeURIComponent(job.id)) : undefined;
    const started = job.startedAt === undefined ? undefined : new Date(job.startedAt);
    // The cancel button is named after its job ("Cancel Big import"), but "Canceling…" names itself: a name holds what it shows (WCAG 2.5.3).
    return html`<tr part="row" data-job-id=${job.id} data-status=${job.status}>
      <th scope="row" tabindex="-1">
        ${link ? html`<a part="name" href=${link}>${title}</a>` : html`<span part="name">${title}</span>`} ${this.renderFamily(job)}
      </th>
      <td><span part="status" class="status ${job.status}">${icon(job.status)}${l.show(l.term(job.status))}</span></td>
      <td class="number">${progress === null || (isEnded(job.status) && job.status !== 'completed') ? this.blank('notAvailable') : l.percent(progress)}</td>
      <td>
        ${started
          ? html`<time datetime=${started.toISOString()}>${new Intl.DateTimeFormat(l.lang(), { dateStyle: 'medium', timeStyle: 'short' }).format(started)}</time>`
          : l.show(l.term('notStarted'))}
      </td>
      <td class="number">${ranFor === undefined ? this.blank('notStarted') : l.clock(ranFor)}</td>
      ${this.cancelable
        ? html`<td>
            ${isEnded(job.status)
              ? nothing
              : html`<button
                  part="cancel-button"
                  aria-label=${this.canceling.has(job.id) ? nothing : l.format('cancelJob', title).text}
                  ?disabled=${this.canceling.has(job.id)}
                  @click=${() => void this.cancel(job)}
                >
                  ${l.show(l.term(this.canceling.has(job.id) ? 'canceling' : 'cancel'))}
                </button>`}
          </td>`
        : nothing}
    </tr>`;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'backjob-jobs': BackjobJobs;
  }
}
