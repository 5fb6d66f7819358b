/**
 * The live channel: a WebSocket endpoint at `${basePath}/ws` that streams job
 * events to browsers. Wire format and guarantees: docs/protocol.md.
 *
 * Each subscription is one ordered stream: a snapshot, then the stored events
 * after the client's `after` seq (paged from the store), then live events from
 * the bus. A subscription is either *live* (bus events go straight out) or
 * *paging* (it only remembers the highest seq it knows exists and reads the
 * store until it has caught up). A socket whose send buffer grows past
 * `HIGH_WATER` switches its subscriptions to paging, so a slow reader costs
 * the server a few numbers per subscription, not a queue of events.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import {
  MAX_CLIENT_FRAME,
  SUBPROTOCOL,
  PROTOCOL_VERSION,
  TICKET_PROTOCOL_PREFIX,
  parseClientMessage,
  type ClientMessage,
  type ErrorCode,
  type JobEvent,
  type JobSnapshot,
  type ServerMessage,
} from '../../shared/protocol.js';
import { toSnapshot } from '../core/records.js';
import { JobLists } from './job-lists.js';
import { positiveOption as positive } from '../validate.js';
import { normalizeOrigin } from '../access/origin.js';
import { TICKET_TTL_MS, readTicket } from '../access/tickets.js';
import type { Access, AttachOptions, BusNotice, Hub } from '../types.js';
import type { BackJobHost } from '../host.js';

/** Above this many bytes waiting in a socket's send buffer, live events stop and the store takes over. */
const HIGH_WATER = 256 * 1024;
/** A paging subscription sends its next page once the buffer is back below this. */
const LOW_WATER = 64 * 1024;
/** Events read from the store per page. */
const PAGE_SIZE = 256;
/** A socket past this much unsent data is not reading at all (only error replies can get here): it is closed. */
const ABANDON_BYTES = 4 * 1024 * 1024;
/**
 * Jobs one socket may watch at once: keeps the per-socket cost bounded (a few
 * numbers per subscription), yet a dashboard of many jobs still fits on one page.
 */
const MAX_SUBSCRIPTIONS = 1_000;
/** How long `close()` waits for clients to finish the closing handshake before cutting them off. */
const CLOSE_GRACE_MS = 2_000;

const DEFAULTS = { maxPayload: MAX_CLIENT_FRAME, rateLimit: 50, heartbeat: 30_000 };

/** One job watched by one socket. */
interface Subscription {
  readonly client: Client;
  readonly jobId: string;
  /** Seq of the snapshot that opened the stream: progress at or below it is already in that snapshot. */
  readonly snapshotSeq: number;
  /** Highest seq delivered (or deliberately skipped as coalesced progress). */
  sentSeq: number;
  /** Highest seq the bus announced while paging. */
  knownSeq: number;
  live: boolean;
  pumping: boolean;
  /** Paging stopped for a full send buffer; resumes when the buffer drains. */
  waitingForDrain: boolean;
  closed: boolean;
}

/** One connected socket. */
interface Client {
  readonly ws: WebSocket;
  readonly principal: string | null;
  readonly subscriptions: Map<string, Subscription>;
  /**
   * Subscribes still being authorized or read, per job. An unsubscribe
   * withdraws them all: each then ends without registering anything.
   */
  readonly pending: Map<string, Set<object>>;
  /** Token bucket: messages left in the current budget, refilled continuously at `rateLimit` per second. */
  tokens: number;
  refilledAt: number;
  /** Frames dropped over the rate limit since the last one accepted: the first is answered, too many close the socket. */
  strikes: number;
  /** Closed for abuse: whatever else arrives is ignored unread. */
  banned: boolean;
  alive: boolean;
}

/** Counters of a hub, for tests and monitoring. */
export interface HubStats {
  clients: number;
  subscriptions: number;
  /** Bytes queued in every socket's send buffer right now. */
  bufferedBytes: number;
  /** The largest `bufferedAmount` any one socket has had since the hub started. */
  maxSocketBufferedBytes: number;
}


/**
 * Progress is latest-wins: of the progress events in one page read from the
 * store, only the last is sent, carrying the latest `progress` and the latest
 * `text` of the page, and progress already folded into the subscription's
 * snapshot is dropped. A reader that fell behind catches up on state without
 * replaying every tick. Log, start and end events always pass, in order.
 */
export function coalesceProgress(events: JobEvent[], snapshotSeq: number): JobEvent[] {
  let lastProgress = -1;
  let progress: number | null | undefined;
  let text: string | undefined;
  events.forEach((event, i) => {
    if (event.type !== 'job:progress' || event.seq <= snapshotSeq) return;
    lastProgress = i;
    if (event.progress !== undefined) progress = event.progress;
    if (event.text !== undefined) text = event.text;
  });
  const out: JobEvent[] = [];
  events.forEach((event, i) => {
    if (event.type !== 'job:progress') out.push(event);
    else if (i === lastProgress) {
      const merged = { ...event };
      if (progress !== undefined) merged.progress = progress;
      if (text !== undefined) merged.text = text;
      out.push(merged);
    }
  });
  return out;
}

/** Writes a plain HTTP refusal on an upgrade socket, then closes it once written (a peer that never reads is not waited for). */
function refuse(socket: Duplex, status: number, reason: string, message: string): void {
  if (socket.destroyed) return;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`,
    () => socket.destroy(),
  );
  setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
}

/** The hubs attached to each server, in order: the first answers upgrades none of them owns. */
const hubsOf = new WeakMap<Server, LiveHub[]>();


/**
 * The WebSocket hub. Created by {@link attachHub} (what `backjob.attach()` calls).
 */
export class LiveHub implements Hub {
  readonly path: string;
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<Client>();
  /** Subscriptions by job id: who gets a bus event. */
  private readonly byJob = new Map<string, Set<Subscription>>();
  private readonly maxPayload: number;
  private readonly rateLimit: number;
  /** Deprecated `attach({ allowedOrigins })`: origins allowed on this socket besides the shim's policy. */
  private readonly extraOrigins: ReadonlySet<string>;
  private readonly heartbeatTimer: NodeJS.Timeout;
  private readonly stopBus: () => void;
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head);
  private readonly lists: JobLists;
  private maxSocketBuffered = 0;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly backjob: BackJobHost,
    private readonly server: Server,
    options: AttachOptions = {},
  ) {
    // `??` rather than a spread: an option passed through as `undefined` means the default.
    this.maxPayload = positive('maxPayload', options.maxPayload ?? DEFAULTS.maxPayload);
    this.rateLimit = positive('rateLimit', options.rateLimit ?? DEFAULTS.rateLimit);
    const heartbeat = positive('heartbeat', options.heartbeat ?? DEFAULTS.heartbeat);
    if (options.allowedOrigins !== undefined && !Array.isArray(options.allowedOrigins)) {
      throw new TypeError(`Expected \`allowedOrigins\` to be an array of origins, got \`${String(options.allowedOrigins)}\``);
    }
    this.extraOrigins = new Set(options.allowedOrigins?.map((o) => normalizeOrigin(o) ?? o));
    this.path = `${backjob.options.basePath.replace(/\/$/, '')}/ws`;

    // ws closes a connection with 1009 for a frame above its own maxPayload,
    // without a word the client could act on. Its limit is set well above
    // ours, so a frame between the two gets a BACKJOB_ERR_TOO_LARGE reply and
    // the socket stays usable; only a grossly oversized frame is cut off.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: Math.max(4 * this.maxPayload, 64 * 1024),
      perMessageDeflate: false,
      // Pings count against the rate limit like any frame (see `onPing`), so they are answered here.
      autoPong: false,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    server.on('upgrade', this.onUpgrade);
    hubsOf.set(server, [...(hubsOf.get(server) ?? []), this]);
    this.lists = new JobLists(backjob.backend.store);
    this.stopBus = backjob.backend.bus.subscribe((message) => this.onBus(message));
    this.heartbeatTimer = setInterval(() => this.beat(), heartbeat);
    this.heartbeatTimer.unref();
  }

  /** Counters for tests and monitoring. */
  stats(): HubStats {
    let subscriptions = 0;
    let bufferedBytes = 0;
    for (const client of this.clients) {
      subscriptions += client.subscriptions.size;
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
    this.stopBus();
    this.lists.close();
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
      if (pathOf(req.url) !== this.path) return this.stray(req, socket);
      this.handshake(req, socket, head);
    } catch {
      socket.destroy();
    }
  }

  private handshake(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.closing) return refuse(socket, 503, 'Service Unavailable', 'Server closing');
    if (!this.originAllowed(req)) return refuse(socket, 403, 'Forbidden', 'Origin not allowed');
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!offered.includes(SUBPROTOCOL)) {
      return refuse(socket, 400, 'Bad Request', `Expected the WebSocket subprotocol ${SUBPROTOCOL}`);
    }
    const ticket = offered.find((p) => p.startsWith(TICKET_PROTOCOL_PREFIX))?.slice(TICKET_PROTOCOL_PREFIX.length);
    // The principal: from the ticket the page got over HTTP (through the app's own middleware), else
    // from `identify` on the bare upgrade (cookies only; what non-browser clients and old pages use).
    // Either may take a while (a session store, Redis); a peer that drops meanwhile is simply gone.
    const principal = ticket === undefined ? this.backjob.identify(req) : this.redeem(ticket);
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
          if (timedOut) return;
          if (who === undefined) return refuse(socket, 401, 'Unauthorized', 'Invalid, expired or used ticket: ask for a new one');
          if (this.closing || socket.destroyed) return socket.destroy();
          this.wss.handleUpgrade(req, socket, head, (ws) => this.connected(ws, who));
        },
        () => timedOut || refuse(socket, 500, 'Internal Server Error', 'Could not identify the user'),
      )
      .catch(() => socket.destroy())
      .finally(() => clearTimeout(deadline));
  }

  /** The principal a ticket speaks for (null: nobody), or undefined when it is not valid or was used. */
  private async redeem(ticket: string): Promise<string | null | undefined> {
    const claim = readTicket(this.backjob.key(), ticket);
    if (!claim) return undefined;
    return (await this.backjob.claimOnce(`backjob:ticket:${claim.nonce}`, TICKET_TTL_MS + 1_000)) ? claim.principal : undefined;
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
    if (hubs[0] !== this || hubs.some((hub) => hub.path === pathOf(req.url))) return;
    const message = `No WebSocket endpoint at ${pathOf(req.url).slice(0, 200)}`;
    if (this.server.listeners('upgrade').every((listener) => hubs.some((hub) => hub.onUpgrade === listener))) {
      return refuse(socket, 404, 'Not Found', message);
    }
    const net = socket as Duplex & { bytesWritten?: number };
    const timeout = this.server.headersTimeout || this.server.requestTimeout || 60_000;
    setTimeout(() => {
      if (!socket.destroyed && !net.bytesWritten) refuse(socket, 404, 'Not Found', message);
    }, timeout).unref();
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
    return this.backjob.originAllowed(origin, req) || this.extraOrigins.has(normalizeOrigin(origin) ?? '');
  }

  private connected(ws: WebSocket, principal: string | null): void {
    const client: Client = {
      ws,
      principal,
      subscriptions: new Map(),
      pending: new Map(),
      tokens: this.rateLimit,
      refilledAt: Date.now(),
      strikes: 0,
      banned: false,
      alive: true,
    };
    this.clients.add(client);
    ws.on('pong', () => (client.alive = true));
    ws.on('ping', (data) => this.onPing(client, data));
    ws.on('message', (data, isBinary) => {
      // ws does not catch what a listener throws: a bug here must cost one reply, not the process.
      try {
        this.onMessage(client, data, isBinary);
      } catch (error) {
        this.error(client, 'BACKJOB_ERR_INTERNAL', `Could not handle the message: ${(error as Error)?.message ?? error}`);
      }
    });
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      this.clients.delete(client);
      this.lists.unwatch(client);
      for (const sub of client.subscriptions.values()) this.drop(sub);
    });
    this.send(client, { type: 'hello', version: PROTOCOL_VERSION, time: Date.now(), rateLimit: this.rateLimit });
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

  // ───────────────────────────── messages ─────────────────────────────

  private onMessage(client: Client, data: RawData, isBinary: boolean): void {
    client.alive = true;
    if (!this.admit(client)) return this.overLimit(client, data, isBinary);
    const size = sizeOf(data);
    if (size > this.maxPayload) {
      return this.error(client, 'BACKJOB_ERR_TOO_LARGE', `Frames are limited to ${this.maxPayload} bytes, got ${size}`);
    }
    if (isBinary) return this.error(client, 'BACKJOB_ERR_BAD_FRAME', 'Expected a text frame');
    const text = textOf(data);
    const message = parseClientMessage(text);
    if (message.type === 'error') return this.send(client, message);
    this.handle(client, message).catch((error: unknown) => {
      const job = 'job' in message ? message.job : undefined;
      this.send(client, { type: 'error', ref: message.ref, job, code: 'BACKJOB_ERR_INTERNAL', message: String((error as Error)?.message ?? error) });
    });
  }

  /** A ping is a frame like any other: within the rate limit it is answered, past it it counts as abuse. */
  private onPing(client: Client, data: Buffer): void {
    if (this.admit(client)) client.ws.pong(data);
    else this.strike(client);
  }

  /**
   * Takes one message from the socket's budget (a token bucket of
   * `rateLimit` per second, so bursts up to that many pass). The client
   * library paces itself below the limit its hello announces.
   */
  private admit(client: Client): boolean {
    if (client.banned || !this.takeToken(client)) return false;
    client.strikes = 0;
    return true;
  }

  /**
   * A frame past the rate limit is dropped unread, with one exception: an
   * unsubscribe of a job the socket holds only frees resources, and a page
   * dropping many elements at once must not leave their streams running.
   * It is recognised without parsing anything large (the client writes it
   * in a few dozen bytes), and there are never more of them than the
   * socket holds jobs.
   */
  private overLimit(client: Client, data: RawData, isBinary: boolean): void {
    if (client.banned) return;
    const size = sizeOf(data);
    if (!isBinary && size <= 256 && (client.subscriptions.size > 0 || client.pending.size > 0)) {
      const text = textOf(data);
      if (text.includes('"unsubscribe"')) {
        const message = parseClientMessage(text);
        if (message.type === 'unsubscribe' && (client.subscriptions.has(message.job) || client.pending.has(message.job))) {
          void this.handle(client, message);
          return;
        }
      }
    }
    this.strike(client);
  }

  /**
   * Counts a frame dropped for the rate limit. The first of a run is answered
   * with one `BACKJOB_ERR_RATE_LIMITED`; a socket that goes on for another
   * second's worth is closed with 1008, so a flood costs the server almost
   * nothing and other sockets do not wait behind it.
   */
  private strike(client: Client): void {
    if (client.banned) return;
    client.strikes += 1;
    if (client.strikes === 1) {
      this.error(client, 'BACKJOB_ERR_RATE_LIMITED', `More than ${this.rateLimit} messages per second: frames past the limit are dropped unread`);
    } else if (client.strikes > this.rateLimit) {
      client.banned = true;
      client.ws.close(1008, 'Rate limit exceeded');
      // The closing handshake is the peer's to finish; a flooder does not get to hold the socket meanwhile.
      setTimeout(() => client.ws.terminate(), CLOSE_GRACE_MS).unref();
    }
  }

  private takeToken(client: Client): boolean {
    const now = Date.now();
    client.tokens = Math.min(this.rateLimit, client.tokens + ((now - client.refilledAt) / 1000) * this.rateLimit);
    client.refilledAt = now;
    if (client.tokens < 1) return false;
    client.tokens -= 1;
    return true;
  }

  private async handle(client: Client, message: ClientMessage): Promise<void> {
    switch (message.type) {
      case 'subscribe':
        return this.subscribe(client, message);
      case 'unsubscribe': {
        client.pending.delete(message.job);
        const sub = client.subscriptions.get(message.job);
        if (sub) this.drop(sub);
        return;
      }
      case 'cancel':
        return this.cancel(client, message);
      case 'list':
        return this.list(client, message);
      case 'unlist':
        return this.lists.unwatch(client);
    }
  }

  private access(client: Client, token: string | undefined): Access {
    return { principal: client.principal, token };
  }

  private notFound(client: Client, ref: string | undefined, job: string): void {
    // Unknown and forbidden answer alike: a guessed id learns nothing.
    this.send(client, { type: 'error', ref, job, code: 'BACKJOB_ERR_NOT_FOUND', message: 'No such job, or not yours to watch' });
  }

  private async subscribe(client: Client, message: Extract<ClientMessage, { type: 'subscribe' }>): Promise<void> {
    const { ref, job: jobId } = message;
    const existing = client.subscriptions.get(jobId);
    if (existing) this.drop(existing); // a resubscribe restarts the stream from the new `after`
    else if (!client.pending.has(jobId) && client.subscriptions.size + client.pending.size >= MAX_SUBSCRIPTIONS) {
      return this.send(client, { type: 'error', ref, job: jobId, code: 'BACKJOB_ERR_TOO_MANY_JOBS', message: `At most ${MAX_SUBSCRIPTIONS} jobs per socket` });
    }
    const request = {};
    client.pending.set(jobId, (client.pending.get(jobId) ?? new Set()).add(request));
    try {
      await this.register(client, message, request);
    } finally {
      const requests = client.pending.get(jobId);
      requests?.delete(request);
      if (requests?.size === 0) client.pending.delete(jobId);
    }
  }

  /** Authorizes a subscribe and opens its stream, unless an unsubscribe withdrew it meanwhile. */
  private async register(client: Client, message: Extract<ClientMessage, { type: 'subscribe' }>, request: object): Promise<void> {
    const { ref, job: jobId } = message;
    const withdrawn = () => !client.pending.get(jobId)?.has(request) || client.ws.readyState !== client.ws.OPEN;
    const job = await this.backjob.authorize(jobId, this.access(client, message.token));
    if (withdrawn()) return;
    if (!job) return this.notFound(client, ref, jobId);

    const snapshot = toSnapshot(job);
    let after = message.after ?? 0;
    let reset = false;
    if (after > snapshot.seq) {
      reset = true; // the client saw events this store never had: its history is not ours
    } else if (after > 0 && after < snapshot.seq) {
      const [next] = await this.backjob.backend.store.eventsAfter(jobId, after, 1);
      if (next?.seq !== after + 1) reset = true; // the events it needs are gone
    }
    if (reset) after = 0;
    if (withdrawn()) return;
    const raced = client.subscriptions.get(jobId); // a later subscribe for the same job overtook this one
    if (raced) this.drop(raced);

    const sub: Subscription = {
      client,
      jobId,
      snapshotSeq: snapshot.seq,
      sentSeq: after,
      knownSeq: snapshot.seq,
      live: false,
      pumping: false,
      waitingForDrain: false,
      closed: false,
    };
    // Registered before the first store read: anything committed from here on
    // is either in that read or announced on the bus (knownSeq).
    client.subscriptions.set(jobId, sub);
    let subs = this.byJob.get(jobId);
    if (!subs) this.byJob.set(jobId, (subs = new Set()));
    subs.add(sub);
    this.send(client, reset ? { type: 'snapshot', ref, job: jobId, snapshot, reset } : { type: 'snapshot', ref, job: jobId, snapshot });
    void this.pump(sub);
  }

  private async cancel(client: Client, message: Extract<ClientMessage, { type: 'cancel' }>): Promise<void> {
    const { ref, job: jobId } = message;
    const job = await this.backjob.authorize(jobId, this.access(client, message.token));
    if (!job) return this.notFound(client, ref, jobId);
    if (await this.backjob.cancel(jobId)) return this.send(client, { type: 'canceled', ref, job: jobId });
    this.send(client, { type: 'error', ref, job: jobId, code: 'BACKJOB_ERR_ENDED', message: 'The job has already ended' });
  }

  private async list(client: Client, message: Extract<ClientMessage, { type: 'list' }>): Promise<void> {
    const { ref } = message;
    if (client.principal === null) {
      return this.send(client, { type: 'error', ref, code: 'BACKJOB_ERR_UNAUTHORIZED', message: 'Listing jobs needs a signed-in user' });
    }
    const page = await this.lists.watch(client, client.principal, (m) => this.send(client, m), message);
    this.send(client, { type: 'list', ref, ...page });
  }

  // ───────────────────────────── streaming ─────────────────────────────

  private onBus(message: BusNotice): void {
    if (message.type === 'resync') return this.resync();
    if (message.events.length === 0) return;
    this.lists.changed(message.jobId);
    const subs = this.byJob.get(message.jobId);
    if (!subs) return;
    const first = message.events[0].seq;
    const last = message.events[message.events.length - 1].seq;
    // Serialized once for every subscriber that is exactly up to date (the common case with many watchers).
    let frame: string | undefined;
    for (const sub of subs) {
      if (last <= sub.sentSeq) continue;
      if (sub.live && first <= sub.sentSeq + 1 && sub.client.ws.bufferedAmount < HIGH_WATER) {
        if (first === sub.sentSeq + 1) {
          frame ??= JSON.stringify({ type: 'events', job: message.jobId, events: message.events } satisfies ServerMessage);
          this.send(sub.client, frame);
        } else {
          this.send(sub.client, { type: 'events', job: sub.jobId, events: message.events.filter((e) => e.seq > sub.sentSeq) });
        }
        sub.sentSeq = last;
        continue;
      }
      // Slow socket, catching up, or a gap (bus messages from several
      // processes can overtake each other): remember how far the job got and
      // let the store fill in, in order.
      sub.knownSeq = Math.max(sub.knownSeq, last);
      if (sub.live) {
        sub.live = false;
        void this.pump(sub);
      }
    }
  }

  /** The bus may have missed events (see `BusNotice`): every live subscription and list reads the store again. */
  private resync(): void {
    this.lists.resync();
    for (const subs of this.byJob.values()) {
      for (const sub of subs) {
        if (!sub.live) continue; // paging already: it reads the store anyway
        sub.live = false;
        void this.pump(sub);
      }
    }
  }

  /** Sends stored events after `sentSeq` page by page while the socket keeps up, then goes live. */
  private async pump(sub: Subscription): Promise<void> {
    if (sub.pumping || sub.closed) return;
    sub.pumping = true;
    const { client } = sub;
    try {
      while (!sub.closed) {
        if (client.ws.bufferedAmount > LOW_WATER) {
          sub.waitingForDrain = true; // resumed by the send callback once the buffer drains
          return;
        }
        const events = await this.backjob.backend.store.eventsAfter(sub.jobId, sub.sentSeq, PAGE_SIZE);
        if (sub.closed) return;
        // Checked again: the other subscriptions of this socket may have sent their pages during the
        // read. Read again later, so a socket catching up on many jobs holds about one page past LOW_WATER.
        if (client.ws.bufferedAmount > LOW_WATER) {
          sub.waitingForDrain = true;
          return;
        }
        if (events.length > 0) {
          const out = coalesceProgress(events, sub.snapshotSeq);
          if (out.length > 0) this.send(client, { type: 'events', job: sub.jobId, events: out });
          sub.sentSeq = events[events.length - 1].seq;
        }
        // Caught up with the store and with everything the bus announced: live from here.
        if (events.length < PAGE_SIZE && sub.sentSeq >= sub.knownSeq) {
          sub.live = true;
          return;
        }
        // The bus announced more than the store shows yet (another process's
        // commit not visible here): go live; the next bus message re-checks.
        if (events.length === 0) {
          sub.live = true;
          return;
        }
      }
    } catch (error) {
      if (!sub.closed) {
        this.send(client, { type: 'error', job: sub.jobId, code: 'BACKJOB_ERR_INTERNAL', message: `Could not read the job's events: ${(error as Error).message}` });
        this.drop(sub);
      }
    } finally {
      sub.pumping = false;
    }
  }

  private drop(sub: Subscription): void {
    sub.closed = true;
    if (sub.client.subscriptions.get(sub.jobId) === sub) sub.client.subscriptions.delete(sub.jobId);
    const subs = this.byJob.get(sub.jobId);
    subs?.delete(sub);
    if (subs?.size === 0) this.byJob.delete(sub.jobId);
  }

  private error(client: Client, code: ErrorCode, message: string): void {
    this.send(client, { type: 'error', code, message });
  }

  /** Sends a message (or one already serialized) unless the socket is closing. */
  private send(client: Client, message: ServerMessage | string): void {
    const { ws } = client;
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > ABANDON_BYTES) {
      // Events never get here (they page); only replies to a peer that keeps
      // sending but never reads. Holding them would be unbounded.
      ws.terminate();
      return;
    }
    ws.send(typeof message === 'string' ? message : JSON.stringify(message), () => this.drained(client));
    if (ws.bufferedAmount > this.maxSocketBuffered) this.maxSocketBuffered = ws.bufferedAmount;
  }

  /** Called as each frame leaves the socket's buffer: restarts paging subscriptions once there is room. */
  private drained(client: Client): void {
    if (client.ws.bufferedAmount > LOW_WATER) return;
    for (const sub of client.subscriptions.values()) {
      if (sub.waitingForDrain) {
        sub.waitingForDrain = false;
        void this.pump(sub);
      }
    }
  }
}

function sizeOf(data: RawData): number {
  return Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
}

function textOf(data: RawData): string {
  return Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.isBuffer(data) ? data.toString() : Buffer.from(data).toString();
}

/** The path of a request target, without its query. */
function pathOf(url: string | undefined): string {
  const target = url ?? '/';
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/** Routes upgrades on `${basePath}/ws` of `server` to the live channel. */
export function attachHub(backjob: BackJobHost, server: Server, options: AttachOptions = {}): LiveHub {
  return new LiveHub(backjob, server, options);
}
