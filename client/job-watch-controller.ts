/**
 * The plumbing every element shares: watching one job through the page's
 * shared connection while the element is in the document, and re-watching
 * when its job, token or connection changes.
 */
import type { ReactiveController, ReactiveControllerHost } from 'lit';
import type { JobSnapshot } from '../shared/protocol.js';
import { getConnection } from './connection.js';
import type { Connection, ConnectionState, WatchUpdate } from './types.js';

/** What an element exposes for the controller to know what to watch. */
export interface JobWatchHost extends ReactiveControllerHost {
  jobId?: string;
  token?: string;
  /** An injected connection (frameworks, tests); default: the page's shared one for `endpoint`. */
  connection?: Connection;
  /** WebSocket URL of the live channel; default: derived from the page. */
  endpoint?: string;
}

/**
 * Watches `host.jobId` (see {@link JobWatchController.sync}) and keeps its latest snapshot, the socket's state and
 * any refusal; forwards every update to `onUpdate` (log lines, resets) and
 * asks the host to render.
 */
export class JobWatchController implements ReactiveController {
  /** The job's latest state, once the server sent it. */
  snapshot?: JobSnapshot;
  /** State of the shared socket, once known. */
  connectionState?: ConnectionState;
  /** Why the server refused or failed the subscription. */
  error?: { code: string; message: string };

  private readonly host: JobWatchHost;
  private readonly onUpdate: (update: WatchUpdate) => void;
  private readonly endpoint: () => string | undefined;
  private unwatch?: () => void;
  /**
   * Whether the host is in a document. Only then does it watch: a detached
   * element whose job changes must not start a watch nothing would release,
   * and one rendered on the server (never connected) must not open a socket.
   */
  private inDocument = false;
  /** What the current watch was made for, to notice when it must be redone. */
  private watched?: { jobId: string; token?: string; connection: Connection };

  /**
   * @param onUpdate - Sees every update first-hand (log lines, resets).
   * @param options.endpoint - Where the live channel is, when the host derives it (default: `host.endpoint`).
   */
  constructor(
    host: JobWatchHost,
    onUpdate: (update: WatchUpdate) => void = () => {},
    options: { endpoint?: () => string | undefined } = {},
  ) {
    (this.host = host).addController(this);
    this.onUpdate = onUpdate;
    this.endpoint = options.endpoint ?? (() => host.endpoint || undefined);
  }

  /** The connection in use: the injected one, or the page's shared one. */
  get connection(): Connection {
    return this.host.connection ?? getConnection(this.endpoint());
  }

  /**
   * The server's clock now, in ms since the epoch: what to measure the
   * snapshot's `startedAt` and the like against, not the browser's own clock,
   * which may be off by minutes.
   */
  serverNow(): number {
    return Date.now() + (this.connection.clockOffset ?? 0);
  }

  /** Whether the job's live updates are currently not reaching us. */
  get disconnected(): boolean {
    return this.connectionState === 'reconnecting' || this.connectionState === 'closed';
  }

  hostConnected(): void {
    // Moved (back) into the document: the next update watches.
    this.inDocument = true;
    this.host.requestUpdate();
  }

  /**
   * Watches the host's current job, re-watching if the job, token or
   * connection changed. Hosts call it first thing in `willUpdate`, so what
   * they derive there already sees what the connection knows (a controller's
   * own `hostUpdate` would run only after `willUpdate`).
   */
  sync(): void {
    const { jobId, token } = this.host;
    if (!jobId || !this.inDocument) {
      this.stop();
      return;
    }
    const connection = this.connection;
    const current = this.watched;
    if (current && current.jobId === jobId && current.token === token && current.connection === connection) return;
    this.stop();
    this.watched = { jobId, token, connection };
    this.unwatch = connection.watch(jobId, token || undefined, (update) => this.receive(update));
    // Read after `watch`, which may have started opening the socket; the first update overrides it.
    this.connectionState ??= connection.state;
  }

  hostDisconnected(): void {
    this.inDocument = false;
    this.stop();
  }

  /** Asks the server to cancel the watched job. */
  cancel(): Promise<void> {
    const { jobId, token } = this.host;
    if (!jobId) return Promise.reject(new Error('No job to cancel'));
    return this.connection.cancel(jobId, token || undefined);
  }

  private receive(update: WatchUpdate): void {
    if (update.snapshot) {
      this.snapshot = update.snapshot;
      this.error = undefined;
    }
    if (update.connection) this.connectionState = update.connection;
    if (update.error) this.error = update.error;
    this.onUpdate(update);
    this.host.requestUpdate();
  }

  private stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    this.watched = undefined;
    this.snapshot = undefined;
    this.connectionState = undefined;
    this.error = undefined;
  }
}
