/**
 * The job bus on Redis pub/sub: one channel per prefix, every process
 * subscribed. A message is delivered to this process's own listeners at once
 * and not again when Redis echoes it back. Events the store appends are
 * published by the store's own write script (one message per write, no round
 * trip of its own), so publishing them here only delivers them locally.
 *
 * Pub/sub drops what is published while a subscriber is disconnected, so after
 * Redis comes back the bus re-reads the store for every job it saw running and
 * delivers the events it missed, and tells its listeners to resync (the hub
 * re-reads its subscriptions, which covers jobs this process had not heard
 * of): watchers never lose an acknowledged event.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { isEndEvent } from '../../../shared/protocol.js';
import type { BusMessage, BusNotice, JobBus } from '../../types.js';
import type { RedisJobStore } from './store.js';


/** Jobs whose last seq this process remembers for catching up after an outage. */
const MAX_TRACKED_JOBS = 10_000;

/** What travels on the channel: the messages of one write (or one `publish`), and the process they come from. */
interface Envelope {
  from: string;
  messages: BusMessage[];
}

/** A `JobBus` on Redis pub/sub. `subscriber` is a dedicated connection (it enters subscriber mode). */
export class RedisJobBus implements JobBus {
  readonly #publisher: Redis;
  readonly #channel: string;
  readonly #store: RedisJobStore;
  readonly #origin = randomUUID();
  readonly #listeners = new Set<(notice: BusNotice) => void>();
  /**
   * Of each job that has not ended, the seq up to which this process heard
   * every event, without a gap (insertion order = age, for the cap).
   */
  readonly #lastSeq = new Map<string, number>();
  #subscribed: Promise<unknown>;
  #closed = false;

  constructor(publisher: Redis, subscriber: Redis, channel: string, store: RedisJobStore) {
    this.#publisher = publisher;
    this.#channel = channel;
    this.#store = store;
    // A channel of this process alone, subscribed with the same command as the bus's: while this
    // process is the bus's only subscriber, its writes publish nothing (see `publishAppends`).
    const own = `${channel}:${this.#origin}`;
    store.publishAppends(channel, this.#origin, own);
    // After a reconnect: subscribe again (the subscriber connection must not
    // resubscribe by itself, see `redis()`) and, once that holds, read what was
    // missed: later messages arrive by pub/sub, earlier ones are in the store.
    let connected = false;
    subscriber.on('ready', () => {
      if (!connected) return void (connected = true);
      if (this.#closed) return;
      subscriber.subscribe(channel, own).then(() => {
        // Jobs this process tracks are caught up below; listeners re-read the rest (a watcher of a
        // job that was still waiting when the connection dropped has heard nothing of it yet).
        this.#notify({ type: 'resync' });
        return this.#catchUp();
      }, () => {});
    });
    // Every envelope begins with its origin (`{"from":"<uuid>",`): this process's own, echoed
    // back by Redis, are told apart by their first bytes, never parsed.
    const fromHere = Buffer.from(JSON.stringify({ from: this.#origin }).slice(0, -1));
    subscriber.on('messageBuffer', (_channel: Buffer, payload: Buffer) => {
      if (payload.length > fromHere.length && payload.compare(fromHere, 0, fromHere.length, 0, fromHere.length) === 0) return;
      let envelope: Envelope;
      try {
        envelope = JSON.parse(payload.toString('utf8')) as Envelope;
      } catch {
        return;
      }
      if (envelope.from === this.#origin || !Array.isArray(envelope.messages)) return;
      for (const message of envelope.messages) this.#deliver(message);
    });
    this.#subscribed = subscriber.subscribe(channel, own);
  }

  /** Resolves once this process receives what others publish. */
  ready(): Promise<unknown> {
    return this.#subscribed;
  }

  async publish(message: BusMessage): Promise<void> {
    this.#deliver(message);
    // Appended events went out with the write that stored them.
    if (message.type === 'events' && this.#store.wasPublished(message.events)) return;
    await this.#publisher.publish(this.#channel, JSON.stringify({ from: this.#origin, messages: [message] } satisfies Envelope));
  }

  subscribe(listener: (notice: BusNotice) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #deliver(message: BusMessage): void {
    this.#track(message.jobId, message);
    this.#notify(message);
  }

  #notify(notice: BusNotice): void {
    for (const listener of this.#listeners) {
      try {
        listener(notice);
      } catch {
        // A listener's failure is its own; the others still hear the message.
      }
    }
  }

  #track(jobId: string, message: BusMessage): void {
    const last = message.events.at(-1);
    if (!last) return;
    if (message.events.some(isEndEvent)) {
      this.#lastSeq.delete(jobId);
      return;
    }
    const known = this.#lastSeq.get(jobId);
    if (known !== undefined && (last.seq <= known || message.events[0]!.seq > known + 1)) {
      // Old news, or news past a gap: after an outage, live messages arrive as soon as the
      // subscribe holds, before the catch-up has read what was missed. Moving the mark past
      // the gap would make the catch-up skip it; the catch-up moves it instead.
      return;
    }
    this.#lastSeq.delete(jobId);
    this.#lastSeq.set(jobId, last.seq);
    if (this.#lastSeq.size > MAX_TRACKED_JOBS) this.#lastSeq.delete(this.#lastSeq.keys().next().value!);
  }

  /** Delivers, from the store, what was published while the subscriber was away. */
  async #catchUp(): Promise<void> {
    for (const [jobId, seq] of [...this.#lastSeq]) {
      for (let after = seq; !this.#closed; ) {
        const events = await this.#store.eventsAfter(jobId, after, 1000).catch(() => []);
        if (events.length === 0) break;
        this.#deliver({ type: 'events', jobId, events });
        after = events.at(-1)!.seq;
        if (events.length < 1000) break;
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
  }
}
