/**
 * Subscription streams, whatever the transport: each subscription is one
 * ordered stream of a job, a snapshot, then the stored events after the
 * client's `after` seq (paged from the store), then live events from the bus.
 *
 * A subscription is either *live* (bus events go straight out) or *paging*
 * (it only remembers the highest seq it knows exists and reads the store until
 * it has caught up). A peer whose send buffer grows past `HIGH_WATER` switches
 * its subscriptions to paging, so a slow reader costs the server a few numbers
 * per subscription, not a queue of events; a page coalesces progress
 * (`coalesceProgress`) and never skips a log line or an end.
 */
import { packEvents, type JobEvent, type JobSnapshot, type ServerMessage } from '../../shared/protocol.js';
import type { BusNotice } from '../types.js';
import { coalesceProgress } from './coalesce.js';
import type { LiveHost } from './host.js';
import { JobLists } from './job-lists.js';

/** Above this many bytes waiting in a peer's send buffer, live events stop and the store takes over. */
export const HIGH_WATER = 256 * 1024;
/** A paging subscription sends its next page once the buffer is back below this. */
export const LOW_WATER = 64 * 1024;
/** Events read from the store per page. */
const PAGE_SIZE = 256;

/**
 * A message on its way to one peer or to many: serialized once per protocol
 * version, and framed once by the transport that writes it (a WebSocket
 * frame, an SSE event), so an update to 10,000 watchers costs one
 * `JSON.stringify` and one frame, not 10,000 of each.
 */
export class Outgoing {
  private packed: string | undefined;
  private whole: string | undefined;
  private framer: ((out: Outgoing) => Buffer) | undefined;
  private framed: Buffer | undefined;

  constructor(readonly message: ServerMessage) {}

  /** The message as JSON for a peer of protocol `version`: from 2 on, `events` go packed (see `packEvents`). */
  json(version: number): string {
    const { message } = this;
    if (version >= 2 && message.type === 'events' && message.events.length > 0) {
      return (this.packed ??= JSON.stringify(packEvents(message.job, message.events)));
    }
    return (this.whole ??= JSON.stringify(message));
  }

  /**
   * The wire form `framer` makes of this message: made by the first peer that
   * sends it, reused by the rest (peers of another transport or version, rare
   * among one message's peers, frame it anew).
   */
  frame(framer: (out: Outgoing) => Buffer): Buffer {
    if (this.framer !== framer) {
      this.framed = framer(this);
      this.framer = framer;
    }
    return this.framed!;
  }
}

/** One connection as the streams see it: where messages go, and how much waits there unsent. */
export interface Peer {
  readonly subscriptions: Map<string, Subscription>;
  /** Bytes queued for the peer and not yet written out. */
  buffered(): number;
  /** Sends a message; an {@link Outgoing} is one shared by many peers, serialized and framed once. */
  send(message: ServerMessage | Outgoing): void;
}

/** One job watched by one peer. */
export interface Subscription {
  readonly peer: Peer;
  readonly jobId: string;
  /** Seq of the snapshot that opened the stream: progress at or below it is already in that snapshot. */
  snapshotSeq: number;
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

/** Every subscription of one transport, fed by the bus while any peer is connected. */
export class LiveStreams {
  /** Subscriptions by job id: who gets a bus event. */
  private readonly byJob = new Map<string, Set<Subscription>>();
  readonly lists: JobLists;
  private peers = 0;
  private stopBus: (() => void) | null = null;

  constructor(private readonly host: LiveHost) {
    this.lists = new JobLists(host.backend.store);
  }

  /** A peer connected: from now on the bus is heard (before its first subscribe, so no commit slips between). */
  retain(): void {
    this.peers += 1;
    this.stopBus ??= this.host.backend.bus.subscribe((notice) => this.onBus(notice));
  }

  /** A peer left: with nobody connected the bus costs nothing. */
  release(peer: Peer): void {
    this.lists.unwatch(peer);
    for (const sub of peer.subscriptions.values()) this.drop(sub);
    this.peers = Math.max(0, this.peers - 1);
    if (this.peers === 0) this.stopListening();
  }

  close(): void {
    this.stopListening();
    this.lists.close();
  }

  private stopListening(): void {
    this.stopBus?.();
    this.stopBus = null;
  }

  /**
   * A subscription of `peer` to `jobId` that hears the bus but sends nothing
   * until {@link open}: made before the store is read for the subscribe, so
   * anything committed from here on is either in that read or announced to
   * it. Dropped if the subscribe comes to nothing.
   */
  reserve(peer: Peer, jobId: string): Subscription {
    const sub: Subscription = {
      peer,
      jobId,
      snapshotSeq: 0,
      sentSeq: 0,
      knownSeq: 0,
      live: false,
      // Not paged yet: nothing may send for it before `open`.
      pumping: true,
      waitingForDrain: false,
      closed: false,
    };
    let subs = this.byJob.get(jobId);
    if (!subs) this.byJob.set(jobId, (subs = new Set()));
    subs.add(sub);
    return sub;
  }

  /** The first page of `jobId`'s events after `after`, read beside the job for a subscribe. */
  firstPage(jobId: string, after: number): Promise<JobEvent[]> {
    return this.host.backend.store.eventsAfter(jobId, after, PAGE_SIZE);
  }

  /**
   * Opens a reserved subscription once its job is authorized: sends the
   * snapshot, then `page` (the events after `after` read with the job), then
   * pages on from the store until caught up, and goes live.
   */
  open(sub: Subscription, snapshot: JobSnapshot, after: number, page: JobEvent[], reply: { ref?: string; reset: boolean }): void {
    const { peer, jobId } = sub;
    if (sub.closed) return;
    const raced = peer.subscriptions.get(jobId); // a later subscribe for the same job overtook this one
    if (raced && raced !== sub) this.drop(raced);
    peer.subscriptions.set(jobId, sub);
    sub.snapshotSeq = snapshot.seq;
    sub.sentSeq = after;
    sub.knownSeq = Math.max(sub.knownSeq, snapshot.seq);
    const { ref, reset } = reply;
    peer.send(reset ? { type: 'snapshot', ref, job: jobId, snapshot, reset } : { type: 'snapshot', ref, job: jobId, snapshot });
    sub.pumping = false;
    if (peer.buffered() <= LOW_WATER) {
      if (page.length > 0) this.deliver(sub, page);
      // The page held everything there was and the bus announced nothing past it: live without another read.
      if (page.length < PAGE_SIZE && sub.sentSeq >= sub.knownSeq) {
        sub.live = true;
        return;
      }
    }
    void this.pump(sub);
  }

  /** Sends a page of stored events (progress the snapshot or a later event covers is left out) and moves the subscription past it. */
  private deliver(sub: Subscription, events: JobEvent[]): void {
    const out = coalesceProgress(events, sub.snapshotSeq);
    if (out.length > 0) sub.peer.send({ type: 'events', job: sub.jobId, events: out });
    sub.sentSeq = events[events.length - 1]!.seq;
  }

  drop(sub: Subscription): void {
    sub.closed = true;
    if (sub.peer.subscriptions.get(sub.jobId) === sub) sub.peer.subscriptions.delete(sub.jobId);
    const subs = this.byJob.get(sub.jobId);
    subs?.delete(sub);
    if (subs?.size === 0) this.byJob.delete(sub.jobId);
  }

  /** Called as the peer's buffer drains: restarts its paging subscriptions once there is room. */
  drained(peer: Peer): void {
    if (peer.buffered() > LOW_WATER) return;
    for (const sub of peer.subscriptions.values()) {
      if (sub.waitingForDrain) {
        sub.waitingForDrain = false;
        void this.pump(sub);
      }
    }
  }

  private onBus(notice: BusNotice): void {
    if (notice.type === 'resync') return this.resync();
    if (notice.events.length === 0) return;
    this.lists.changed(notice.jobId);
    const subs = this.byJob.get(notice.jobId);
    if (!subs) return;
    const first = notice.events[0].seq;
    const last = notice.events[notice.events.length - 1].seq;
    // Serialized once for every subscriber that is exactly up to date (the common case with many watchers).
    let whole: Outgoing | undefined;
    for (const sub of subs) {
      if (last <= sub.sentSeq) continue;
      if (sub.live && first <= sub.sentSeq + 1 && sub.peer.buffered() < HIGH_WATER) {
        if (first === sub.sentSeq + 1) {
          whole ??= new Outgoing({ type: 'events', job: notice.jobId, events: notice.events });
          sub.peer.send(whole);
        } else {
          sub.peer.send({ type: 'events', job: sub.jobId, events: notice.events.filter((e) => e.seq > sub.sentSeq) });
        }
        sub.sentSeq = last;
        continue;
      }
      // Slow peer, catching up, or a gap (bus messages from several processes
      // can overtake each other): remember how far the job got and let the
      // store fill in, in order.
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

  /** Sends stored events after `sentSeq` page by page while the peer keeps up, then goes live. */
  private async pump(sub: Subscription): Promise<void> {
    if (sub.pumping || sub.closed) return;
    sub.pumping = true;
    const { peer } = sub;
    try {
      while (!sub.closed) {
        if (peer.buffered() > LOW_WATER) {
          sub.waitingForDrain = true; // resumed by `drained` once the buffer drains
          return;
        }
        const events = await this.host.backend.store.eventsAfter(sub.jobId, sub.sentSeq, PAGE_SIZE);
        if (sub.closed) return;
        // Checked again: the peer's other subscriptions may have sent their pages during the read.
        // Read again later, so a peer catching up on many jobs holds about one page past LOW_WATER.
        if (peer.buffered() > LOW_WATER) {
          sub.waitingForDrain = true;
          return;
        }
        if (events.length > 0) this.deliver(sub, events);
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
        peer.send({ type: 'error', job: sub.jobId, code: 'BACKJOB_ERR_INTERNAL', message: `Could not read the job's events: ${(error as Error).message}` });
        this.drop(sub);
      }
    } finally {
      sub.pumping = false;
    }
  }
}
