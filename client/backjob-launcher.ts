import { LitElement, html, nothing, type ComplexAttributeConverter } from 'lit';
import { customElement, property, state } from 'lit/decorators.js';
import { isEnded, type BatchMember, type StartRequest } from '../shared/protocol.js';
import { BackjobApiError, DEFAULT_BASE_PATH, startJob } from './api.js';
import { launcherStyles } from './backjob-launcher.styles.js';
import './backjob-log.js';
import './backjob-progress.js';
import { emit } from './events.js';
import { icon } from './icons.js';
import { FAMILY_PARTS } from './job-family.js';
import { JobWatchController } from './job-watch-controller.js';
import { LocalizeController, type LocalizedTerm } from './localize.js';
import type { Connection } from './types.js';

/**
 * Reads a JSON attribute. Invalid JSON is kept as the raw string so the
 * launcher can say what is wrong when it is pressed, instead of throwing
 * while the page parses.
 */
const jsonAttribute: ComplexAttributeConverter<Record<string, unknown> | string | undefined> = {
  fromAttribute(value) {
    if (value === null) return undefined;
    try {
      return JSON.parse(value) as Record<string, unknown>;
    } catch {
      return value;
    }
  },
  toAttribute(value) {
    return value === undefined ? null : JSON.stringify(value);
  },
};

/** Reads the `batch` attribute: a JSON list, or the raw string when it is not JSON (said when pressed). */
const jsonListAttribute: ComplexAttributeConverter<BatchMember[] | string | undefined> = {
  fromAttribute(value) {
    if (value === null) return undefined;
    try {
      return JSON.parse(value) as BatchMember[];
    } catch {
      return value;
    }
  },
  toAttribute(value) {
    return value === undefined ? null : JSON.stringify(value);
  },
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What is wrong with the launcher's attributes (told in the page's language when pressed); `member` counts from 0. */
type Problem =
  | { problem: 'nameOrRoute' | 'batchOrSingle' | 'batchNotList'; member?: number }
  | { problem: 'notJsonObject'; attribute: string; member?: number };

/** One job's request from its fields (the launcher's own, or a batch member's), or what is wrong with them. */
function singleRequest(fields: Partial<BatchMember>, member?: number): BatchMember | Problem {
  if (Boolean(fields.name) === Boolean(fields.route)) return { problem: 'nameOrRoute', member };
  const request: BatchMember = fields.name ? { name: fields.name } : { route: fields.route };
  if (fields.method) request.method = fields.method;
  for (const key of ['params', 'body'] as const) {
    const value: unknown = fields[key];
    if (value === undefined) continue;
    if (!isPlainObject(value)) return { problem: 'notJsonObject', attribute: key, member };
    request[key] = value;
  }
  if (fields.bodyType) request.bodyType = fields.bodyType;
  if (fields.weight !== undefined) request.weight = fields.weight;
  return request;
}

/**
 * @summary A button that starts a server job (or a batch of them) as the
 * current user, then shows its progress (and its log) live, in one card.
 *
 * Launchable is only what the server declared launchable; otherwise the
 * server's refusal is shown. While the job runs the button is disabled; when
 * the server merged the request into an identical job already running, the
 * launcher watches that one. Once the job ended it can start again.
 *
 * With `batch` (a list of jobs, each as `name`/`route`/`params`… would start
 * it, and an optional `weight`), one press starts them all as one batch
 * job, `POST {base-path}/jobs` with `{ batch: [...], title }`, and shows that
 * job like any other: its progress is its members'; `show-children` lists them.
 *
 * The inner views' parts are forwarded (`exportparts`), so a page styles
 * them from outside: `backjob-launcher::part(indicator)`. Names the launcher
 * uses itself are prefixed: `progress-base`, `progress-error`,
 * `cancel-button`, `log-base`, `log-error`.
 *
 * @slot - The button's label. Default: "Start", in the page's language.
 *
 * @fires {CustomEvent<BackjobStartDetail>} backjob-start - Before anything is sent; `detail.request` is the request. Cancel it (`preventDefault()`) to send nothing.
 * @fires {CustomEvent<BackjobProgressDetail>} backjob-progress - From the progress view: progress or status text changed.
 * @fires {CustomEvent<BackjobCompletedDetail>} backjob-completed - From the progress view: the job completed.
 * @fires {CustomEvent<BackjobFailedDetail>} backjob-failed - From the progress view: the job failed.
 * @fires {CustomEvent<BackjobCanceledDetail>} backjob-canceled - From the progress view: the job was canceled.
 * @fires {CustomEvent<BackjobOpenDetail>} backjob-open - From the progress view: the user opened one of the job's children.
 *
 * @csspart base - The container.
 * @csspart button - The start button.
 * @csspart error - Why the job could not be started.
 * @csspart note - Says that an identical job was joined.
 * @csspart card - The card holding the progress view and the log.
 * @csspart progress - The `<backjob-progress>` view.
 * @csspart log - The `<backjob-log>` view.
 * @csspart label - Forwarded from the progress view.
 * @csspart status - Forwarded from the progress view.
 * @csspart icon - Forwarded from the progress view.
 * @csspart track - Forwarded from the progress view.
 * @csspart indicator - Forwarded from the progress view.
 * @csspart details - Forwarded from the progress view.
 * @csspart text - Forwarded from the progress view.
 * @csspart time - Forwarded from the progress view.
 * @csspart step-summary - Forwarded from the progress view, as are all its parts for steps and children: `steps`, `step`, `step-‹state›`, `step-title`, `step-status`, `step-track`, `step-indicator`, `children-summary`, `children`, `child`, `child-‹status›`, `child-title`, `child-link`, `child-status`, `child-track`, `child-indicator`, `child-text`, `children-toggle`.
 * @csspart progress-base - The progress view's `base`.
 * @csspart progress-error - The progress view's `error`.
 * @csspart cancel-button - The progress view's `button`.
 * @csspart log-base - The log's `base` (the scrolling region).
 * @csspart line - Forwarded from the log.
 * @csspart empty - Forwarded from the log.
 * @csspart log-error - The log's `error`.
 *
 * @cssproperty [--backjob-button-color=#0969da] - Start button background (dark: `#4493f8`).
 * @cssproperty [--backjob-button-text-color=#ffffff] - Start button text (dark: `#0d1117`).
 * @cssproperty [--backjob-failed-color=#cf222e] - Error text (dark: `#ff7b72`).
 * @cssproperty [--backjob-frame-color=#d1d9e0] - The card's frame (dark: `#3d444d`).
 * @cssproperty [--backjob-spacing=0.75rem] - Space after the element when another follows it.
 */
@customElement('backjob-launcher')
export class BackjobLauncher extends LitElement {
  static override styles = launcherStyles;

  /**
   * Jobs to start as one batch: a JSON list in the attribute, an array as
   * property, each `{ name | route, method?, params?, body?, bodyType?, weight? }`.
   * Exclusive with `name` and `route`.
   */
  @property({ converter: jsonListAttribute }) batch?: BatchMember[] | string;

  /** Name of a launchable in-process job. Exclusive with `route`. */
  @property() name?: string;

  /** Path of a launchable route of the app (e.g. `/reports/build`). Exclusive with `name`. */
  @property() route?: string;

  /** HTTP method of a route job. Default: the server's (GET, or POST when there is a `body`). */
  @property() method?: string;

  /** Handler params, or the route's query string: JSON in the attribute, an object as property. */
  @property({ converter: jsonAttribute }) params?: Record<string, unknown> | string;

  /** A route job's body: JSON in the attribute, an object as property. */
  @property({ converter: jsonAttribute }) body?: Record<string, unknown> | string;

  /** How a route job's body is sent: `form` (default) or `json`. */
  @property({ attribute: 'body-type' }) bodyType?: 'form' | 'json';

  /** Also shows the job's log. */
  @property({ type: Boolean, attribute: 'show-log' }) showLog = false;

  /**
   * What a screen reader hears from the log (see `<backjob-log live>`): `off`
   * by default, since the progress view already tells the job's story;
   * `summary` adds "12 new log lines" now and then; `polite` reads each line.
   */
  @property({ attribute: 'log-live' }) logLive: 'polite' | 'summary' | 'off' = 'off';

  /** Lists the job's steps (see `<backjob-progress show-steps>`). */
  @property({ type: Boolean, attribute: 'show-steps' }) showSteps = false;

  /** Lists the job's children or the batch's members (see `<backjob-progress show-children>`). */
  @property({ type: Boolean, attribute: 'show-children' }) showChildren = false;

  /** How many children show before "Show all". Default 10. */
  @property({ type: Number, attribute: 'children-limit' }) childrenLimit = 10;

  /** A link for each child, `{id}` standing for its id: `href="/watch/{id}"`. */
  @property() href?: string;

  /** Without `href`: each child's title is a button that fires `backjob-open`. */
  @property({ type: Boolean }) openable = false;

  /** Label of the progress view (and, as "Log of ‹label›", of the log); a batch's title too. Default: the job's title. */
  @property() label?: string;

  /** `light` or `dark` forces a theme on the launcher and its views; default: the page's `color-scheme`. */
  @property({ reflect: true }) theme?: 'light' | 'dark';

  /** Lets the user cancel the job while it runs. */
  @property({ type: Boolean }) cancelable = false;

  /** Mount point of the server's HTTP API. */
  @property({ attribute: 'base-path' }) basePath = DEFAULT_BASE_PATH;

  /** WebSocket URL of the live channel. Default: `ws` under `base-path` on this page's host. */
  @property() endpoint?: string;

  /** A connection to use instead of the page's shared one (frameworks, tests). */
  @property({ attribute: false }) connection?: Connection;

  /** Reflected from the click until the job ended: the button does nothing meanwhile. Read-only. */
  @property({ type: Boolean, reflect: true }) running = false;

  /** Id of the job last started or joined. Read-only. */
  @state() jobId?: string;

  /** Watch token of that job. Read-only. */
  @state() token?: string;

  /** Whether the server merged the last request into an identical job already running. Read-only. */
  @state() merged = false;

  @state() private starting = false;
  @state() private error?: LocalizedTerm | Problem;

  private readonly localize = new LocalizeController(this);
  private readonly watch = new JobWatchController(this, undefined, { endpoint: () => this.liveEndpoint });

  protected override willUpdate(): void {
    this.watch.sync();
    const snapshot = this.watch.snapshot;
    const watching = Boolean(this.jobId) && !this.watch.error && !(snapshot && isEnded(snapshot.status));
    this.running = this.starting || watching;
  }

  /** The live channel's URL for the children: explicit, or `ws` beside a non-default API mount. */
  private get liveEndpoint(): string | undefined {
    if (this.endpoint) return this.endpoint;
    const basePath = this.basePath.replace(/\/+$/, '');
    return basePath === DEFAULT_BASE_PATH ? undefined : `${basePath}/ws`;
  }

  /** Builds the request from the attributes, or says what is wrong with them. */
  private buildRequest(): StartRequest | Problem {
    const single = { name: this.name, route: this.route, method: this.method, params: this.params, body: this.body, bodyType: this.bodyType };
    if (this.batch === undefined) return singleRequest(single as Partial<BatchMember>);
    if (Object.values(single).some((value) => value !== undefined && value !== '')) return { problem: 'batchOrSingle' };
    if (!Array.isArray(this.batch) || !this.batch.length) return { problem: 'batchNotList' };
    const members: BatchMember[] = [];
    for (const [i, member] of this.batch.entries()) {
      const request = isPlainObject(member) ? singleRequest(member, i) : ({ problem: 'nameOrRoute', member: i } as const);
      if ('problem' in request) return request;
      members.push(request);
    }
    return { batch: members, ...(this.label ? { title: this.label } : {}) };
  }

  /** Starts the job (as a click does). Resolves once the server answered. */
  async start(): Promise<void> {
    // `running` catches up only in the next update; `starting` is set at once,
    // so a second call in the same task (a script calling twice) sends nothing.
    if (this.running || this.starting) return;
    const request = this.buildRequest();
    if ('problem' in request) {
      this.error = request;
      return;
    }
    // Set before the event too: a backjob-start listener that calls start() must not send a second request.
    this.starting = true;
    if (!emit(this, 'backjob-start', { request }, { cancelable: true })) {
      this.starting = false;
      return;
    }
    this.error = undefined;
    try {
      const reply = await startJob(request, { basePath: this.basePath });
      this.jobId = reply.id;
      this.token = reply.token;
      this.merged = reply.merged;
    } catch (error) {
      // A refusal the client knows by its code is told in the page's language; others as the server wrote them.
      const known = error instanceof BackjobApiError ? this.localize.error(error.code) : undefined;
      this.error = known ?? { text: error instanceof Error ? error.message : String(error), lang: 'en' };
    } finally {
      this.starting = false;
    }
  }

  private errorWords(): LocalizedTerm | undefined {
    const error = this.error;
    if (!error || 'text' in error) return error;
    const l = this.localize;
    const words = error.problem === 'notJsonObject' ? l.format('notJsonObject', error.attribute) : l.term(error.problem);
    return error.member === undefined ? words : l.format('batchMember', l.number(error.member + 1), words.text);
  }

  protected override render() {
    const endpoint = this.liveEndpoint;
    const error = this.errorWords();
    const label = this.label || undefined;
    return html`
      <div part="base">
        <button part="button" type="button" aria-disabled=${this.running ? 'true' : 'false'} @click=${this.start}>
          <slot>${this.localize.show(this.localize.term('start'))}</slot>
        </button>
        ${error ? html`<p part="error" role="alert">${icon('failed')}<span>${this.localize.show(error)}</span></p>` : nothing}
        ${this.merged && this.jobId ? html`<p part="note">${this.localize.show(this.localize.term('joined'))}</p>` : nothing}
        ${this.jobId
          ? html`<div part="card" class=${this.showLog ? 'with-log' : ''}>
              <backjob-progress
                part="progress"
                exportparts=${`base: progress-base, label, status, icon, track, indicator, details, text, time, error: progress-error, button: cancel-button, ${FAMILY_PARTS.join(', ')}`}
                job-id=${this.jobId}
                token=${this.token ?? nothing}
                endpoint=${endpoint ?? nothing}
                label=${label ?? nothing}
                .connection=${this.connection}
                .announceInitial=${true}
                ?cancelable=${this.cancelable}
                ?show-steps=${this.showSteps}
                ?show-children=${this.showChildren}
                children-limit=${this.childrenLimit}
                href=${this.href ?? nothing}
                ?openable=${this.openable}
              ></backjob-progress>
              ${this.showLog
                ? html`<backjob-log
                    part="log"
                    exportparts="base: log-base, line, empty, error: log-error"
                    job-id=${this.jobId}
                    token=${this.token ?? nothing}
                    endpoint=${endpoint ?? nothing}
                    label=${label ? this.localize.format('logOf', label).text : nothing}
                    live=${this.logLive}
                    .connection=${this.connection}
                  ></backjob-log>`
                : nothing}
            </div>`
          : nothing}
      </div>
    `;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'backjob-launcher': BackjobLauncher;
  }
}
