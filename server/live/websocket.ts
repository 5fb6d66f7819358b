/**
 * The WebSocket transport: `${basePath}/ws` on the app's `http.Server`. The
 * handshake (origin, subprotocol, ticket or `identify`), upgrades for paths
 * it does not own, heartbeats, and one {@link LiveSession} per socket.
 * Wire format and guarantees: docs/protocol.md.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import * as wsModule from 'ws';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { MAX_CLIENT_FRAME, PROTOCOLS, SUBPROTOCOL, SUBPROTOCOL_V1, TICKET_PROTOCOL_PREFIX } from '../../shared/protocol.js';
import { positiveOption as positive, stringArrayOption } from '../validate.js';
import { normalizeOrigin } from '../access/origin.js';
import { TICKET_TTL_MS, readTicket } from '../access/tickets.js';
import type { AttachOptions, Hub } from '../types.js';
import type { LiveHost } from './host.js';
import { LiveSession, type SessionLimits, type SessionTransport } from './session.js';
import { LiveStreams, type Outgoing } from './streams.js';

/** A socket past this much unsent data is not reading at all (only error replies can get here): it is closed. */
const ABANDON_BYTES = 4 * 1024 * 1024;
/** How long `close()` waits for clients to finish the closing handshake before cutting them off. */
const CLOSE_GRACE_MS = 2_000;

const DEFAULTS = { maxPayload: MAX_CLIENT_FRAME, rateLimit: 50, heartbeat: 30_000 };


/** `ws`'s public framing (`Sender.frame`, also `WebSocket.Sender` in CommonJS), which its typings leave out. */
type Framing = { frame(data: Buffer, options: object): Buffer[] };
const wsExports = wsModule as unknown as { Sender?: Framing; default?: { Sender?: Framing } };
const Sender = (wsExports.Sender ?? wsExports.default?.Sender)!;
const TEXT_FRAME = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false };

/**
 * A message as one unmasked, uncompressed text frame, header and payload in
 * one buffer: made once per message and protocol version, and written to
 * every socket it goes to with a single `write` each (`ws.send` would encode
 * the text, build a header and cork two writes per socket).
 */
const textFrame = (version: number) => (out: Outgoing): Buffer => Buffer.concat(Sender.frame(Buffer.from(out.json(version)), TEXT_FRAME));
/** The framer of each protocol version: one function each, so a message framed for many sockets is framed once. */
const TEXT_FRAMES = new Map(PROTOCOLS.map(({ version }) => [version, textFrame(version)]));

/** Counters of a hub, for tests and monitoring. */
export interface HubStats {
  clients: number;
  subscriptions: number;
  /** Bytes queued in every socket's send buffer right now. */
  bufferedBytes: number;
  /** The largest `bufferedAmount` any one socket has had since the hub started. */
  maxSocketBufferedBytes: number;
}

/** Writes a plain HTTP refusal on an upgrade socket, then closes it once written (a peer that never reads is not waited for). */
function refuse(socket: Duplex, status: number, reason: string, message: string): void {
  if (answered(socket)) return; // gone, or another listener answered it
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`,
    () => socket.destroy(),
  );
  setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
}

/**
 * One connected socket, and the transport its session writes through (a
 * class, not an object of closures: a hub holds thousands of these).
 */
class Client implements SessionTransport {
  /**
   * The TCP socket under `ws`. Frames go straight to it, beside ws's own
   * control frames; that keeps their order because ws writes synchronously
   * too when nothing is being compressed: permessage-deflate is off (see the
   * hub's constructor) and the hub never sends fragments or blobs.
   */
  readonly socket: Socket;
  session!: LiveSession;
  /** Answered the last ping (or sent anything since). */
  alive = true;
  /** Written to in this tick; `corked`: since its second message, which held the rest back (see {@link LiveHub.written}). */
  wrote = false;
  corked = false;

  /** Frames messages in the protocol version the socket speaks. */
  private readonly framer: (out: Outgoing) => Buffer;

  constructor(
    readonly ws: WebSocket,
    private readonly hub: LiveHub,
    readonly version: number,
  ) {
    this.socket = (ws as unknown as { _socket: Socket })._socket;
    this.framer = TEXT_FRAMES.get(version)!;
  }

  buffered(): number {
    return this.socket.writableLength;
  }

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  write(out: Outgoing): void {
    const { socket } = this;
    if (socket.writableLength > ABANDON_BYTES) {
      // Events never get here (they page); only replies to a peer that keeps
      // sending but never reads. Holding them would be unbounded.
      this.ws.terminate();
      return;
    }
    if (this.wrote && !this.corked) {
      socket.cork();
      this.corked = true;
    }
    socket.write(out.frame(this.framer));
    if (!this.wrote) {
      this.wrote = true;
      this.hub.written(this);
    }
    this.hub.noteBuffered(socket.writableLength);
  }

  ban(): void {
    this.ws.close(1008, 'Rate limit exceeded');
    // The closing handshake is the peer's to finish; a flooder does not get to hold the socket meanwhile.
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }
}

/** The hubs attached to each server, in order: the first answers upgrades none of them owns. */
const hubsOf = new WeakMap<Server, LiveHub[]>();

/** The WebSocket hub. Created by {@link attachHub} (what `backjob.attach()` calls). */
export class LiveHub implements Hub {
  readonly path: string;
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<Client>();
  private readonly streams: LiveStreams;
  private readonly rateLimit: number;
  /** One object for every session of the hub. */
  private readonly limits: SessionLimits;
  /** Deprecated `attach({ allowedOrigins })`: origins allowed on this socket besides the shim's policy. */
  private readonly extraOrigins: ReadonlySet<string>;
  private readonly heartbeatTimer: NodeJS.Timeout;
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head);
  private maxSocketBuffered = 0;
  /** Told the app that another listener answers this hub's path (see {@link contested}). */
  private warnedContested = false;
  /** Clients written to in this tick (see {@link written}). */
  private writtenThisTick: Client[] = [];
  private closing: Promise<void> | null = null;

  constructor(
    private readonly host: LiveHost,
    private readonly server: Server,
    options: AttachOptions = {},
  ) {
    // `??` rather than a spread: an option passed through as `undefined` means the default.
    const maxPayload = positive('maxPayload', options.maxPayload ?? DEFAULTS.maxPayload);
    this.rateLimit = positive('rateLimit', options.rateLimit ?? DEFAULTS.rateLimit);
    this.limits = { rateLimit: this.rateLimit, maxPayload };
    const heartbeat = positive('heartbeat', options.heartbeat ?? DEFAULTS.heartbeat);
    const origins = options.allowedOrigins === undefined ? [] : stringArrayOption('allowedOrigins', options.allowedOrigins, 'an array of origins such as `https://app.example`');
    this.extraOrigins = new Set(origins.map((o) => normalizeOrigin(o) ?? o));
    this.path = `${host.options.basePath.replace(/\/$/, '')}/ws`;

    // ws closes a connection with 1009 for a frame above its own maxPayload,
    // without a word the client could act on. Its limit is set well above
    // ours, so a frame between the two gets a BACKJOB_ERR_TOO_LARGE reply and
    // the socket stays usable; only a grossly oversized frame is cut off.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: Math.max(4 * maxPayload, 64 * 1024),
      perMessageDeflate: false,
      // Pings count against the rate limit like any frame (see `onPing`), so they are answered here.
      autoPong: false,
      handleProtocols: (offered) => PROTOCOLS.find(({ subprotocol }) => offered.has(subprotocol))?.subprotocol ?? false,
    });
    server.on('upgrade', this.onUpgrade);
    hubsOf.set(server, [...(hubsOf.get(server) ?? []), this]);
    this.streams = new LiveStreams(host);
    this.heartbeatTimer = setInterval(() => this.beat(), heartbeat);
    this.heartbeatTimer.unref();
  }

  owns(req: IncomingMessage): boolean {
    return pathOf(req.url) === this.path;
  }

  /** Counters for tests and monitoring. */
  stats(): HubStats {
    let subscriptions = 0;
    let bufferedBytes = 0;
    for (const client of this.clients) {
      subscriptions += client.session.subscriptions.size;
      bufferedBytes += client.ws.bufferedAmount;
    }
    return { clients: this.clients.size, subscriptions, bufferedBytes, maxSocketBufferedBytes: this.maxSocketBuffered };
  }

  /** Closes every client (1001 "going away") and stops routing upgrades. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.server.off('upgrade', this.onUpgrade);
    hubsOf.set(this.server, (hubsOf.get(this.server) ?? []).filter((hub) => hub !== this));
    clearInterval(this.heartbeatTimer);
    this.streams.close();
    const closed = [...this.clients].map(
      (client) =>
        new Promise<void>((resolve) => {
          if (client.ws.readyState === client.ws.CLOSED) return resolve();
          client.ws.once('close', () => resolve());
          client.ws.close(1001, 'Server closing');
          setTimeout(() => {
            client.ws.terminate();
            resolve();
          }, CLOSE_GRACE_MS).unref();
        }),
    );
    await Promise.all(closed);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  // ───────────────────────────── handshake ─────────────────────────────

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node takes its own error listener off a socket it hands to `upgrade` listeners: without one,
    // a peer that resets the connection would end the process. Every upgrade gets one, ours or not.
    if (socket.listenerCount('error') === 0) socket.on('error', () => socket.destroy());
    try {
      if (!this.owns(req)) return this.stray(req, socket);
      // Another listener answering this path too (a listener before this one, or one after it
      // within the same emit) leaves the client a bare 400 or a reset: the app is told why.
      if (answered(socket)) return this.contested();
      this.handshake(req, socket, head);
      if (!answered(socket)) process.nextTick(() => answered(socket) && this.contested());
    } catch {
      socket.destroy();
    }
  }

  /**
   * Tells the app, once, that another `upgrade` listener of the server
   * answers this hub's path. The usual one: a `ws` server created with
   * `{ server }`, which answers every upgrade of its server and, given a
   * `path`, refuses all the others with 400 at once.
   */
  private contested(): void {
    if (this.warnedContested) return;
    this.warnedContested = true;
    this.host.reportError(
      new Error(
        `Another 'upgrade' listener of this server answered BackJob's WebSocket path ${this.path}, so live connections fail. ` +
          'A ws WebSocketServer created with { server } answers every upgrade of its server (with { path }, it refuses the others with 400): ' +
          "create it with { noServer: true } and route your server's upgrades by path, leaving BackJob's to it (hub.owns(req)).",
      ),
    );
  }

  private handshake(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.closing) return refuse(socket, 503, 'Service Unavailable', 'Server closing');
    if (!this.originAllowed(req)) return refuse(socket, 403, 'Forbidden', 'Origin not allowed');
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!PROTOCOLS.some(({ subprotocol }) => offered.includes(subprotocol))) {
      return refuse(socket, 400, 'Bad Request', `Expected the WebSocket subprotocol ${SUBPROTOCOL} (or ${SUBPROTOCOL_V1})`);
    }
    const ticket = offered.find((p) => p.startsWith(TICKET_PROTOCOL_PREFIX))?.slice(TICKET_PROTOCOL_PREFIX.length);
    // The principal: from the ticket the page got over HTTP (through the app's own middleware), else
    // from `identify` on the bare upgrade (cookies only; what non-browser clients and old pages use).
    // Either may take a while (a session store, Redis); a peer that drops meanwhile is simply gone.
    const principal = ticket === undefined ? this.host.identify(req) : this.redeem(ticket);
    // A session store or Redis that never answers must not hold the socket past the server's own header timeout.
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      refuse(socket, 503, 'Service Unavailable', 'Could not identify the user in time');
    }, this.server.headersTimeout || 60_000);
    deadline.unref();
    principal
      .then(
        (who) => {
          // Gone, or taken by another listener meanwhile (see `contested`): not ours to touch.
          if (timedOut || answered(socket)) return;
          if (who === undefined) return refuse(socket, 401, 'Unauthorized', 'Invalid, expired or used ticket: ask for a new one');
          if (this.closing) return socket.destroy();
          this.wss.handleUpgrade(req, socket, head, (ws) => this.connected(ws, who));
        },
        () => timedOut || refuse(socket, 500, 'Internal Server Error', 'Could not identify the user'),
      )
      .catch(() => socket.destroy())
      .finally(() => clearTimeout(deadline));
  }

  /** The principal a ticket speaks for (null: nobody), or undefined when it is not valid or was used. */
  private async redeem(ticket: string): Promise<string | null | undefined> {
    const claim = readTicket(this.host.key(), ticket);
    if (!claim) return undefined;
    return (await this.host.claimOnce(`backjob:ticket:${claim.nonce}`, TICKET_TTL_MS + 1_000)) ? claim.principal : undefined;
  }

  /**
   * An upgrade for a path no hub of this server owns. Another `upgrade`
   * listener (Vite's HMR, another ws server) may take it; if no one does,
   * it would hang forever, past every timeout of the server, holding an fd.
   * When only hubs listen it is answered 404 at once; otherwise it is
   * answered once the server's own header timeout passed with nothing
   * written to it.
   */
  private stray(req: IncomingMessage, socket: Duplex): void {
    const hubs = hubsOf.get(this.server) ?? [];
    // One answer per socket: the first hub answers for all of them, and none answers another's path.
    if (hubs[0] !== this || hubs.some((hub) => hub.owns(req))) return;
    const message = `No WebSocket endpoint at ${pathOf(req.url).slice(0, 200)}`;
    if (this.server.listeners('upgrade').every((listener) => hubs.some((hub) => hub.onUpgrade === listener))) {
      return refuse(socket, 404, 'Not Found', message);
    }
    const timeout = this.server.headersTimeout || this.server.requestTimeout || 60_000;
    // Unless another listener took it meanwhile: `refuse` leaves an answered socket alone.
    setTimeout(() => refuse(socket, 404, 'Not Found', message), timeout).unref();
  }

  /**
   * Browsers always send Origin on a WebSocket handshake, so a page the
   * policy does not allow is refused here. A request without Origin comes
   * from a non-browser client, which no page can drive, and still has to
   * pass `identify`/tokens.
   */
  private originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    return this.host.originAllowed(origin, req) || this.extraOrigins.has(normalizeOrigin(origin) ?? '');
  }

  // ───────────────────────────── sockets ─────────────────────────────

  private connected(ws: WebSocket, principal: string | null): void {
    const version = PROTOCOLS.find(({ subprotocol }) => subprotocol === ws.protocol)?.version ?? 1;
    const client = new Client(ws, this, version);
    const session = (client.session = new LiveSession(this.host, this.streams, principal, client, this.limits));
    this.clients.add(client);
    ws.on('pong', () => (client.alive = true));
    // A ping is a frame like any other: within the rate limit it is answered, past it it counts as abuse.
    ws.on('ping', (data) => (session.admit() ? ws.pong(data) : session.strike()));
    ws.on('message', (data, isBinary) => {
      client.alive = true;
      // ws does not catch what a listener throws: a bug here must cost one reply, not the process.
      try {
        session.receive(sizeOf(data), () => textOf(data), isBinary);
      } catch (error) {
        session.error('BACKJOB_ERR_INTERNAL', `Could not handle the message: ${(error as Error)?.message ?? error}`);
      }
    });
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      this.clients.delete(client);
      session.close();
    });
    // Paging subscriptions stop above LOW_WATER, past the socket's own high-water mark, so a 'drain' follows.
    client.socket.on('drain', () => session.drained());
    session.send({ type: 'hello', version, time: Date.now(), rateLimit: this.rateLimit });
  }

  /**
   * @internal A client was written to in this tick. Its first message goes
   * out at once; from its second on, the socket is corked until the tick
   * ends, when the rest leave in one write. A watcher of many jobs (a
   * dashboard, a list) gets every job's news of one commit or one Redis read
   * in one syscall rather than one each, while a socket written once per
   * tick (fan-out to many watchers) pays nothing but this list.
   */
  written(client: Client): void {
    if (this.writtenThisTick.push(client) === 1) process.nextTick(this.endTick);
  }

  private readonly endTick = (): void => {
    const clients = this.writtenThisTick;
    this.writtenThisTick = [];
    for (const client of clients) {
      client.wrote = false;
      if (client.corked) {
        client.corked = false;
        client.socket.uncork();
      }
    }
  };

  /** @internal A write left `bytes` queued on one socket: kept for {@link stats}. */
  noteBuffered(bytes: number): void {
    if (bytes > this.maxSocketBuffered) this.maxSocketBuffered = bytes;
  }

  /** A peer that missed the last ping round is gone (a sleeping laptop, a dead NAT entry). */
  private beat(): void {
    for (const client of this.clients) {
      if (!client.alive) {
        client.ws.terminate();
        continue;
      }
      client.alive = false;
      client.ws.ping();
    }
  }
}

function sizeOf(data: RawData): number {
  return Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
}

function textOf(data: RawData): string {
  return Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.isBuffer(data) ? data.toString() : Buffer.from(data).toString();
}

/** Whether something wrote to an upgrade's socket or closed it. */
function answered(socket: Duplex): boolean {
  return socket.destroyed || ((socket as Duplex & { bytesWritten?: number }).bytesWritten ?? 0) > 0;
}

/** The path of a request target, without its query. */
export function pathOf(url: string | undefined): string {
  const target = url ?? '/';
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/** Routes upgrades on `${basePath}/ws` of `server` to the live channel. */
export function attachHub(host: LiveHost, server: Server, options: AttachOptions = {}): LiveHub {
  return new LiveHub(host, server, options);
}
