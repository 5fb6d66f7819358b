/**
 * Test and bench harness for the live channel: a real BackJob (memory
 * backend) behind a real http server on port 0 with the hub attached, jobs
 * the test drives by hand, and a raw `ws` client that records what it gets.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { readServerMessage, SUBPROTOCOL, type ClientMessage, type JobEvent, type ServerMessage } from '../../shared/protocol.js';
import { attachHub, type LiveHub } from '../live/websocket.js';
import { createBackJob, memory } from '../index.js';
import type { BackJobServer as BackJob } from '../backjob.js';
import type { AttachOptions, BackJobOptions, JobContext } from '../types.js';
import { waitFor } from './helpers.js';

export { waitFor };

/** The user a request speaks for: the `x-user` header (what a session cookie is in an app). */
export function userOf(req: IncomingMessage): string | null {
  const user = req.headers['x-user'];
  return typeof user === 'string' ? user : null;
}

/** A request-shaped value to start a job as `user`. */
export function asUser(user: string): IncomingMessage {
  return { headers: { 'x-user': user } } as unknown as IncomingMessage;
}

/** A job whose handler waits until the test ends it: the test reports through `job`. */
export interface ManualJob {
  id: string;
  token: string;
  job: JobContext;
  /** Ends the handler (it returns, and the job completes). */
  finish(): void;
}

/** A running BackJob with the hub on a real port. */
export class LiveServer {
  hub!: LiveHub;
  server!: Server;
  port = 0;
  private readonly running = new Map<string, { job: JobContext; finish: () => void }>();

  private constructor(readonly backjob: BackJob) {
    backjob.define('manual', (job) => new Promise<void>((finish) => this.running.set(job.id, { job, finish })));
  }

  /** Starts BackJob and listens on `port` (0: any free port). */
  static async start(
    options: { backjob?: Partial<BackJobOptions>; attach?: AttachOptions; port?: number; define?: (backjob: BackJob) => void } = {},
  ): Promise<LiveServer> {
    const backjob = createBackJob({ backend: memory(), key: 'live-test-key-0123456789abcdef', identify: userOf, ...options.backjob });
    const live = new LiveServer(backjob);
    options.define?.(backjob); // before `ready`: recovery at start-up re-runs jobs by their handler
    await backjob.ready;
    await live.listen(options.port ?? 0, options.attach);
    return live;
  }

  /** `ws://127.0.0.1:<port>/backjob/ws` */
  get url(): string {
    return `ws://127.0.0.1:${this.port}${this.backjob.host.options.basePath}/ws`;
  }

  /** (Re)opens the http server and hub, on the same port when one was already used. */
  async listen(port = this.port, attach?: AttachOptions): Promise<void> {
    this.server = createServer((_req, res) => res.writeHead(404).end());
    this.hub = attachHub(this.backjob.host, this.server, attach);
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Closes the hub and the http server, leaving BackJob (and its running jobs) alone: a web-tier restart. */
  async stopListening(): Promise<void> {
    await this.hub.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Starts a `manual` job (owned by `owner`, or nobody) and waits until its handler runs. */
  async manual(owner?: string): Promise<ManualJob> {
    const { id, token } = await this.backjob.start({ name: 'manual' }, { as: owner ? asUser(owner) : 'anonymous', merge: false });
    const { job, finish } = await waitFor(() => this.running.get(id), `job ${id} to start`);
    return { id, token, job, finish };
  }

  async close(): Promise<void> {
    for (const { finish } of this.running.values()) finish();
    await this.stopListening();
    await this.backjob.close();
  }
}

/** A raw protocol client that records every message it receives. */
export class TestClient {
  readonly messages: ServerMessage[] = [];
  /** Every text frame as it came, before {@link readServerMessage} unpacked it. */
  readonly frames: string[] = [];
  closeCode?: number;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const text = data.toString();
      this.frames.push(text);
      this.messages.push(readServerMessage(text));
    });
    ws.on('close', (code) => (this.closeCode = code));
  }

  /** Opens a socket offering `protocols` (this version's subprotocol); resolves once the server said hello. */
  static async open(url: string, options: WebSocket.ClientOptions = {}, protocols: string | string[] = SUBPROTOCOL): Promise<TestClient> {
    const client = new TestClient(new WebSocket(url, protocols, options));
    await once(client.ws, 'open');
    await client.next((m) => m.type === 'hello', 'hello');
    return client;
  }

  send(message: ClientMessage | string): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** The first message (from `from` on) matching `match`, waiting for it. */
  next<T extends ServerMessage>(match: (m: ServerMessage) => m is T, what: string, from?: number): Promise<T>;
  next(match: (m: ServerMessage) => boolean, what: string, from?: number): Promise<ServerMessage>;
  next(match: (m: ServerMessage) => boolean, what: string, from = 0): Promise<ServerMessage> {
    return waitFor(() => this.messages.slice(from).find(match), what);
  }

  /** Every event received for `job`, in arrival order. */
  events(job: string): JobEvent[] {
    return this.messages.flatMap((m) => (m.type === 'events' && m.job === job ? m.events : []));
  }

  /** The log lines received for `job`, in arrival order. */
  lines(job: string): string[] {
    return this.events(job).flatMap((e) => (e.type === 'job:log' ? [e.line] : []));
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await once(this.ws, 'close');
  }
}
