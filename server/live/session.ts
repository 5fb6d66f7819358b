/**
 * One live connection's conversation, whatever carries it (a WebSocket, an
 * SSE stream with its POSTs): the client's messages (subscribe, unsubscribe,
 * cancel, list), their limits, and the rate limit. The transport hands it
 * text and says how to send and how to cut the peer off.
 */
import { parseClientMessage, type ClientMessage, type ErrorCode, type ServerMessage } from '../../shared/protocol.js';
import { toSnapshot } from '../core/records.js';
import type { Access } from '../types.js';
import type { LiveHost } from './host.js';
import { Outgoing, type LiveStreams, type Peer, type Subscription } from './streams.js';

/**
 * Jobs one connection may watch at once: keeps the per-connection cost bounded
 * (a few numbers per subscription), yet a dashboard of many jobs still fits on one page.
 */
export const MAX_SUBSCRIPTIONS = 1_000;

/** What a transport provides a session. */
export interface SessionTransport {
  /** Bytes queued for the peer and not yet written out. */
  buffered(): number;
  /** Writes one message (serialized, perhaps framed already: see {@link Outgoing}). */
  write(out: Outgoing): void;
  /** Whether messages can still go out. */
  readonly open: boolean;
  /** Cuts a peer off for abuse (a flood past the rate limit). */
  ban(): void;
}

export interface SessionLimits {
  /** Client messages per second (a token bucket of that many). */
  rateLimit: number;
  /** Largest client message in bytes. */
  maxPayload: number;
}

/** What became of a client message: handled (or answered with an error), or dropped over the rate limit. */
export type Verdict = 'accepted' | 'limited';

export class LiveSession implements Peer {
  readonly subscriptions = new Map<string, Subscription>();
  /**
   * Subscribes still being authorized or read, per job. An unsubscribe
   * withdraws them all: each then ends without registering anything.
   */
  private readonly pending = new Map<string, Set<object>>();
  /** Token bucket: messages left in the current budget, refilled continuously at `rateLimit` per second. */
  private tokens: number;
  private refilledAt = Date.now();
  /** Messages dropped over the rate limit since the last one accepted: the first is answered, too many ban the peer. */
  private strikes = 0;
  /** Cut off for abuse: whatever else arrives is ignored unread. */
  banned = false;
  private closed = false;

  constructor(
    private readonly host: LiveHost,
    private readonly streams: LiveStreams,
    readonly principal: string | null,
    private readonly transport: SessionTransport,
    readonly limits: SessionLimits,
  ) {
    this.tokens = limits.rateLimit;
    streams.retain();
  }

  buffered(): number {
    return this.transport.buffered();
  }

  send(message: ServerMessage | Outgoing): void {
    if (this.closed || !this.transport.open) return;
    this.transport.write(message instanceof Outgoing ? message : new Outgoing(message));
  }

  /** The transport's buffer drained (part of it): paging subscriptions go on. */
  drained(): void {
    this.streams.drained(this);
  }

  /** The connection is gone: every subscription and list of it ends. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending.clear();
    this.streams.release(this);
  }

  /**
   * One client message: `size` in bytes, its text read only when it is to be
   * parsed (a flood's frames are dropped unread).
   */
  receive(size: number, text: () => string, isBinary = false): Verdict {
    if (!this.admit()) return this.overLimit(size, text, isBinary);
    if (size > this.limits.maxPayload) {
      this.error('BACKJOB_ERR_TOO_LARGE', `Frames are limited to ${this.limits.maxPayload} bytes, got ${size}`);
      return 'accepted';
    }
    if (isBinary) {
      this.error('BACKJOB_ERR_BAD_FRAME', 'Expected a text frame');
      return 'accepted';
    }
    const message = parseClientMessage(text());
    if (message.type === 'error') {
      this.send(message);
      return 'accepted';
    }
    this.submit(message);
    return 'accepted';
  }

  /** A message the transport made itself (a stream's query subscriptions): not counted against the rate limit. */
  submit(message: ClientMessage): void {
    this.handle(message).catch((error: unknown) => {
      const job = 'job' in message ? message.job : undefined;
      this.send({ type: 'error', ref: message.ref, job, code: 'BACKJOB_ERR_INTERNAL', message: String((error as Error)?.message ?? error) });
    });
  }

  /**
   * Takes one message from the budget (a token bucket of `rateLimit` per
   * second, so bursts up to that many pass). The client library paces itself
   * below the limit its hello announces.
   */
  admit(): boolean {
    if (this.banned || !this.takeToken()) return false;
    this.strikes = 0;
    return true;
  }

  /**
   * Counts a message dropped for the rate limit. The first of a run is
   * answered with one `BACKJOB_ERR_RATE_LIMITED`; a peer that goes on for
   * another second's worth is cut off, so a flood costs the server almost
   * nothing and other peers do not wait behind it.
   */
  strike(): void {
    if (this.banned) return;
    this.strikes += 1;
    if (this.strikes === 1) {
      this.error('BACKJOB_ERR_RATE_LIMITED', `More than ${this.limits.rateLimit} messages per second: frames past the limit are dropped unread`);
    } else if (this.strikes > this.limits.rateLimit) {
      this.banned = true;
      this.transport.ban();
    }
  }

  error(code: ErrorCode, message: string): void {
    this.send({ type: 'error', code, message });
  }

  /**
   * A message past the rate limit is dropped unread, with one exception: an
   * unsubscribe of a job the peer holds only frees resources, and a page
   * dropping many elements at once must not leave their streams running.
   * It is recognised without parsing anything large (the client writes it
   * in a few dozen bytes), and there are never more of them than the peer
   * holds jobs.
   */
  private overLimit(size: number, text: () => string, isBinary: boolean): Verdict {
    if (this.banned) return 'limited';
    if (!isBinary && size <= 256 && (this.subscriptions.size > 0 || this.pending.size > 0)) {
      const raw = text();
      if (raw.includes('"unsubscribe"')) {
        const message = parseClientMessage(raw);
        if (message.type === 'unsubscribe' && (this.subscriptions.has(message.job) || this.pending.has(message.job))) {
          void this.handle(message);
          return 'accepted';
        }
      }
    }
    this.strike();
    return 'limited';
  }

  private takeToken(): boolean {
    const now = Date.now();
    const { rateLimit } = this.limits;
    this.tokens = Math.min(rateLimit, this.tokens + ((now - this.refilledAt) / 1000) * rateLimit);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private async handle(message: ClientMessage): Promise<void> {
    switch (message.type) {
      case 'subscribe':
        return this.subscribe(message);
      case 'unsubscribe': {
        this.pending.delete(message.job);
        const sub = this.subscriptions.get(message.job);
        if (sub) this.streams.drop(sub);
        return;
      }
      case 'cancel':
        return this.cancel(message);
      case 'list':
        return this.list(message);
      case 'unlist':
        return this.streams.lists.unwatch(this);
    }
  }

  private access(token: string | undefined): Access {
    return { principal: this.principal, token };
  }

  private notFound(ref: string | undefined, job: string): void {
    // Unknown and forbidden answer alike: a guessed id learns nothing.
    this.send({ type: 'error', ref, job, code: 'BACKJOB_ERR_NOT_FOUND', message: 'No such job, or not yours to watch' });
  }

  private async subscribe(message: Extract<ClientMessage, { type: 'subscribe' }>): Promise<void> {
    const { ref, job: jobId } = message;
    const existing = this.subscriptions.get(jobId);
    if (existing) this.streams.drop(existing); // a resubscribe restarts the stream from the new `after`
    else if (!this.pending.has(jobId) && this.subscriptions.size + this.pending.size >= MAX_SUBSCRIPTIONS) {
      return this.send({ type: 'error', ref, job: jobId, code: 'BACKJOB_ERR_TOO_MANY_JOBS', message: `At most ${MAX_SUBSCRIPTIONS} jobs per connection` });
    }
    // Hears the bus from before the store is read (see `LiveStreams.reserve`); sends nothing until opened.
    const sub = this.streams.reserve(this, jobId);
    this.pending.set(jobId, (this.pending.get(jobId) ?? new Set()).add(sub));
    try {
      await this.register(message, sub);
    } finally {
      const requests = this.pending.get(jobId);
      requests?.delete(sub);
      if (requests?.size === 0) this.pending.delete(jobId);
      if (this.subscriptions.get(jobId) !== sub) this.streams.drop(sub); // never opened (or overtaken since)
    }
  }

  /**
   * Authorizes a subscribe and opens its stream, unless an unsubscribe
   * withdrew it meanwhile. The job and the first page of its events after
   * `after` are read together, one round trip to the store rather than two
   * in a row; the page is thrown away if the job turns out not to be the
   * peer's to watch.
   */
  private async register(message: Extract<ClientMessage, { type: 'subscribe' }>, sub: Subscription): Promise<void> {
    const { ref, job: jobId } = message;
    const withdrawn = () => !this.pending.get(jobId)?.has(sub) || this.closed || !this.transport.open;
    const after = message.after ?? 0;
    const [job, page] = await Promise.all([
      this.host.authorize(jobId, this.access(message.token)),
      this.streams.firstPage(jobId, after),
    ]);
    if (withdrawn()) return;
    if (!job) return this.notFound(ref, jobId);

    const snapshot = toSnapshot(job);
    let first = page;
    if (after > 0 && after < snapshot.seq && first.length === 0) {
      // Read before the row (a store may answer the two in either order) and before the commits the row
      // shows: an empty page proves nothing gone, so read it again.
      first = await this.streams.firstPage(jobId, after);
      if (withdrawn()) return;
    }
    // The client saw events this store never had, or the ones it needs next are gone: its history is not ours.
    const reset = after > snapshot.seq || (after > 0 && after < snapshot.seq && first[0]?.seq !== after + 1);
    this.streams.open(sub, snapshot, reset ? 0 : after, reset ? [] : first, { ref, reset });
  }

  private async cancel(message: Extract<ClientMessage, { type: 'cancel' }>): Promise<void> {
    const { ref, job: jobId } = message;
    const job = await this.host.authorize(jobId, this.access(message.token));
    if (!job) return this.notFound(ref, jobId);
    if (await this.host.cancel(jobId)) return this.send({ type: 'canceled', ref, job: jobId });
    this.send({ type: 'error', ref, job: jobId, code: 'BACKJOB_ERR_ENDED', message: 'The job has already ended' });
  }

  private async list(message: Extract<ClientMessage, { type: 'list' }>): Promise<void> {
    const { ref } = message;
    if (this.principal === null) {
      return this.send({ type: 'error', ref, code: 'BACKJOB_ERR_UNAUTHORIZED', message: 'Listing jobs needs a signed-in user' });
    }
    const page = await this.streams.lists.watch(this, this.principal, (m) => this.send(m), message);
    this.send({ type: 'list', ref, ...page });
  }
}
