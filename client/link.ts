/**
 * The wire under a page's connection: one socket at a time (a WebSocket, or
 * an SSE stream when the WebSocket cannot open or by choice), opened with a
 * ticket, reconnected with exponential backoff and jitter, sending within the
 * server's rate limit. What travels on it is the connection's business.
 */
import { PROTOCOLS, readServerMessage, TICKET_PROTOCOL_PREFIX, type ServerMessage } from '../shared/protocol.js';
import { configuredTransport } from './config.js';
import { UNAVAILABLE, fetchTicket } from './endpoints.js';
import { Outbox } from './outbox.js';
import { SseSocket, type StreamJob } from './sse-socket.js';
import { OPEN, type TransportChoice, type WebSocketConstructor, type WebSocketLike } from './transport.js';
import type { ConnectionState } from './types.js';

/** Sockets in a row that never opened before `auto` takes SSE instead (a proxy that refuses upgrades). */
export const WS_FAILURES_BEFORE_SSE = 2;

/** What the link tells the connection above it. */
export interface LinkEvents {
  /** Whether anything still needs the link: without, it does not reconnect. */
  inUse(): boolean;
  /** The jobs an SSE stream subscribes in its own request, each resumed after its last seq. */
  streamJobs(): StreamJob[];
  state(state: Exclude<ConnectionState, 'open'>): void;
  /** A socket opened; `streamed` are the jobs its own request subscribed already. */
  opened(streamed: ReadonlySet<string>): void;
  received(message: ServerMessage): void;
  /** The socket closed; a reconnect follows when the link is still in use. */
  lost(): void;
}

export interface LinkOptions {
  url: string;
  Socket: WebSocketConstructor | undefined;
  ticketUrl: string | null;
  eventsUrl: string | null;
  transport: TransportChoice | undefined;
  minBackoff: number;
  maxBackoff: number;
}

export class Link {
  private socket: WebSocketLike | null = null;
  /** A ticket is being fetched for the next socket. */
  private opening = false;
  private attempts = 0;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private readonly outbox = new Outbox(() => this.socket);
  /** Sockets in a row that closed before they opened. */
  private unopened = 0;
  private fellBack = false;
  /** An SSE stream opened on this link once: the network lets streams through, and `auto` keeps to them. */
  private streamOpened = false;

  constructor(
    private readonly options: LinkOptions,
    private readonly events: LinkEvents,
  ) {}

  /** A socket exists (open or opening). */
  get active(): boolean {
    return this.socket !== null;
  }

  get open(): boolean {
    return this.socket?.readyState === OPEN;
  }

  /** Opens a socket unless one is open, opening, or scheduled. */
  connect(): void {
    if (this.socket || this.opening || this.reconnectTimer !== undefined) return;
    this.events.state(this.attempts === 0 ? 'connecting' : 'reconnecting');
    this.opening = true;
    const sse = this.usesSse();
    // A stream is opened by a request that goes through the app's middleware itself: it needs no ticket.
    void (sse ? Promise.resolve(undefined) : fetchTicket(this.options.ticketUrl)).then((ticket) => {
      this.opening = false;
      // Everyone left (or close() came) while the ticket was on its way.
      if (!this.events.inUse()) return this.events.state('closed');
      // Opened without, the socket would speak for nobody and its jobs be refused for good.
      if (ticket === UNAVAILABLE) return this.scheduleReconnect();
      if (sse) return this.stream();
      let socket: WebSocketLike;
      try {
        // Every version offered: a server from before version 2 answers in version 1, which reads the same.
        const protocols = PROTOCOLS.map(({ subprotocol }) => subprotocol);
        socket = new this.options.Socket!(this.options.url, ticket ? [...protocols, `${TICKET_PROTOCOL_PREFIX}${ticket}`] : protocols);
      } catch {
        // A malformed URL or a blocked port: treat like a failed attempt.
        return this.scheduleReconnect();
      }
      this.attach(socket, new Set());
    });
  }

  /** Sends a message within the server's rate limit: at once while the budget allows, else in turn. */
  send(message: object, sent?: () => void): void {
    if (!this.socket) return;
    this.outbox.push(JSON.stringify(message), sent);
  }

  /** The server's hello: sending may start, at the pace it allows. */
  greet(rateLimit: unknown): void {
    this.outbox.greet(rateLimit);
  }

  /** Closes the socket now, and reconnects no more. */
  close(reason: string): void {
    clearTimeout(this.reconnectTimer);
    // Emptied too: `connect()` takes a set `reconnectTimer` to mean an attempt is already scheduled.
    this.reconnectTimer = undefined;
    const socket = this.socket;
    this.socket = null;
    this.outbox.reset();
    socket?.close(1000, reason);
  }

  /** The delay before retry number `attempt` (from 0): `base` doubling up to `maxBackoff`. */
  backoff(base: number, attempt: number): number {
    const ceiling = Math.min(this.options.maxBackoff, base * 2 ** attempt);
    // Full-range jitter in the upper half: a server restart is not greeted by every page at the same instant.
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  }

  /** Which transport the next socket uses: the option, else the page's configuration; `auto` takes SSE once sockets kept failing. */
  private usesSse(): boolean {
    const choice = this.options.transport ?? configuredTransport();
    if (this.options.eventsUrl === null || typeof fetch !== 'function') return false;
    return choice === 'sse' || (choice === 'auto' && (this.fellBack || !this.options.Socket));
  }

  private stream(): void {
    const jobs = this.events.streamJobs();
    this.attach(new SseSocket(this.options.eventsUrl!, jobs), new Set(jobs.map((job) => job.job)));
  }

  private attach(socket: WebSocketLike, streamed: ReadonlySet<string>): void {
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      opened = true;
      if (socket instanceof SseSocket) this.streamOpened = true;
      this.unopened = 0;
      this.attempts = 0;
      this.outbox.reset();
      this.events.opened(streamed);
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket || typeof event.data !== 'string') return;
      let message: ServerMessage;
      try {
        message = readServerMessage(event.data);
      } catch {
        return; // not from a BackJob server; nothing sensible to do with it
      }
      this.events.received(message);
    };
    socket.onerror = () => {}; // a close event always follows, and carries the decision
    socket.onclose = (event: { status?: number } | undefined) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.outbox.reset(); // what waited is asked again on the next socket
      const auto = (this.options.transport ?? configuredTransport()) === 'auto';
      if (auto && !opened) this.fallBack(socket instanceof SseSocket, event?.status);
      this.events.lost();
      if (this.events.inUse()) this.scheduleReconnect();
      else this.events.state('closed');
    };
  }

  /**
   * `auto`, after a socket that never opened. Sockets that never open, again
   * and again: a proxy refusing upgrades, or a server that is down. SSE tells
   * them apart: a stream that got no HTTP answer at all means the server is
   * unreachable, so the WebSocket is tried again next; once a stream opened,
   * SSE stays.
   */
  private fallBack(wasStream: boolean, status: number | undefined): void {
    if (!wasStream) {
      if (++this.unopened < WS_FAILURES_BEFORE_SSE || this.options.eventsUrl === null || typeof fetch !== 'function') return;
      this.fellBack = true;
      this.attempts = 0;
    } else if (status === undefined && !this.streamOpened) {
      this.fellBack = false;
      this.unopened = 0;
    }
  }

  private scheduleReconnect(): void {
    this.events.state('reconnecting');
    const delay = this.backoff(this.options.minBackoff, this.attempts);
    this.attempts += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.events.inUse()) this.connect();
      else this.events.state('closed');
    }, delay);
  }
}
