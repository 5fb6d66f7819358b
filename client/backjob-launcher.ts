import { LitElement, html, nothing, type ComplexAttributeConverter } from 'lit';
import { customElement, property, state } from 'lit/decorators.js';
import { isEnded, type StartRequest } from '../shared/protocol.js';
import { DEFAULT_BASE_PATH, startJob } from './api.js';
import { launcherStyles } from './backjob-launcher.styles.js';
import './backjob-log.js';
import './backjob-progress.js';
import { emit } from './events.js';
import { JobWatchController } from './job-watch-controller.js';
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

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * @summary A button that starts a server job as the current user, then shows
 * its progress (and its log) live.
 *
 * Launchable is only what the server declared launchable; otherwise the
 * server's refusal is shown. While the job runs the button is disabled; when
 * the server merged the request into an identical job already running, the
 * launcher watches that one. Once the job ended it can start again.
 *
 * @slot - The button's label. Default: "Start".
 *
 * @fires backjob-start - Before anything is sent; `detail.request` is the request. Cancel it (`preventDefault()`) to send nothing.
 * @fires backjob-progress - From the progress view: progress or status text changed.
 * @fires backjob-completed - From the progress view: the job completed.
 * @fires backjob-failed - From the progress view: the job failed.
 * @fires backjob-canceled - From the progress view: the job was canceled.
 *
 * @csspart base - The container.
 * @csspart button - The start button.
 * @csspart error - Why the job could not be started.
 * @csspart note - Says that an identical job was joined.
 * @csspart progress - The `<backjob-progress>` view.
 * @csspart log - The `<backjob-log>` view.
 *
 * @cssproperty [--backjob-button-color=#0969da] - Start button background (dark: `#4493f8`).
 * @cssproperty [--backjob-button-text-color=#ffffff] - Start button text (dark: `#0d1117`).
 * @cssproperty [--backjob-failed-color=#cf222e] - Error text (dark: `#ff7b72`).
 */
@customElement('backjob-launcher')
export class BackjobLauncher extends LitElement {
  static override styles = launcherStyles;

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
  @state() private error?: string;

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
  private buildRequest(): StartRequest | string {
    if (Boolean(this.name) === Boolean(this.route)) return 'Set either the name or the route of the job to start.';
    const request: StartRequest = this.name ? { name: this.name } : { route: this.route };
    if (this.method) request.method = this.method;
    for (const key of ['params', 'body'] as const) {
      const value = this[key];
      if (value === undefined) continue;
      if (!isPlainObject(value)) return `The ${key} attribute must be a JSON object.`;
      request[key] = value;
    }
    if (this.bodyType) request.bodyType = this.bodyType;
    return request;
  }

  /** Starts the job (as a click does). Resolves once the server answered. */
  async start(): Promise<void> {
    // `running` catches up only in the next update; `starting` is set at once,
    // so a second call in the same task (a script calling twice) sends nothing.
    if (this.running || this.starting) return;
    const request = this.buildRequest();
    if (typeof request === 'string') {
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
      this.error = error instanceof Error ? error.message : String(error);
    } finally {
      this.starting = false;
    }
  }

  protected override render() {
    const endpoint = this.liveEndpoint;
    return html`
      <div part="base">
        <button part="button" type="button" aria-disabled=${this.running ? 'true' : 'false'} @click=${this.start}>
          <slot>Start</slot>
        </button>
        ${this.error ? html`<p part="error" role="alert">${this.error}</p>` : nothing}
        ${this.merged && this.jobId ? html`<p part="note">Joined the identical job that was already running.</p>` : nothing}
        ${this.jobId
          ? html`<backjob-progress
              part="progress"
              job-id=${this.jobId}
              token=${this.token ?? nothing}
              endpoint=${endpoint ?? nothing}
              .connection=${this.connection}
              .announceInitial=${true}
              ?cancelable=${this.cancelable}
            ></backjob-progress>`
          : nothing}
        ${this.jobId && this.showLog
          ? html`<backjob-log
              part="log"
              job-id=${this.jobId}
              token=${this.token ?? nothing}
              endpoint=${endpoint ?? nothing}
              .connection=${this.connection}
            ></backjob-log>`
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
