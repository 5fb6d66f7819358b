/**
 * The only writer of job events: every report of every job goes into one
 * batch, written with a single `store.append` per tick (group commit); while
 * one write is in flight the next batch fills, so a flood of `update()` calls
 * costs a few transactions, not one each. Only once a batch is durable does
 * the writer tell its listeners (the runner, the app's events) and the bus,
 * so nobody hears of an end that could still be lost.
 */
import type { EndEventData } from '../../shared/protocol.js';
import { retryWithBackoff } from './backoff.js';
import type { ReportError } from './emitter.js';
import type { AppendResult, JobBus, JobEventData, JobStore } from '../types.js';

/** What a job context writes through: the narrow side of the writer. */
export interface EventSink {
  /**
   * Queues events for the next group commit. Resolves with the results of the
   * whole batch (by job id) once it is durable.
   */
  write(jobId: string, events: JobEventData[], runner?: string | null): Promise<Map<string, AppendResult>>;
  /** Queues the end of a job, retried until it is stored (see {@link EventWriter.end}). */
  end(jobId: string, event: EndEventData): Promise<Map<string, AppendResult>>;
}

/** Who hears of writes, downstream of the writer: told, never asked. */
export interface WriteListener {
  /** An end of `jobId` was queued (not yet durable): its contexts stop reporting at once. */
  ending?(jobId: string): void;
  /** Events that are now durable (never empty). */
  stored?(result: AppendResult & { job: NonNullable<AppendResult['job']> }): void;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A pending group commit: events per job, in the order they were reported. */
interface Batch {
  /** `children`: where each child's `job:child` sits in `events`, so a newer one takes its place. */
  entries: Map<string, { events: JobEventData[]; runner?: string | null; children?: Map<string, number> }>;
  done: Deferred<Map<string, AppendResult>>;
}

export class EventWriter implements EventSink {
  private readonly listeners: WriteListener[] = [];
  private batch: Batch | null = null;
  private flushing: Promise<void> | null = null;
  private flushScheduled = false;
  private closing = false;

  constructor(
    private readonly store: JobStore,
    private readonly bus: JobBus,
    private readonly reportError: ReportError,
  ) {}

  listen(listener: WriteListener): void {
    this.listeners.push(listener);
  }

  write(jobId: string, events: JobEventData[], runner?: string | null): Promise<Map<string, AppendResult>> {
    if (!this.batch) {
      const done = deferred<Map<string, AppendResult>>();
      done.promise.catch(() => {}); // reported once through `error`; writers that care await it
      this.batch = { entries: new Map(), done };
    }
    let entry = this.batch.entries.get(jobId);
    if (!entry) this.batch.entries.set(jobId, (entry = { events: [] }));
    for (const event of events) {
      const last = entry.events.at(-1);
      if (event.type === 'job:child') {
        // A child's news is latest-wins too, per child: its place in the batch is taken by the newest.
        entry.children ??= new Map();
        const at = entry.children.get(event.child.id);
        if (at === undefined) {
          entry.children.set(event.child.id, entry.events.length);
          entry.events.push(event);
        } else {
          entry.events[at] = event;
        }
      } else if (event.type === 'job:step' && last?.type === 'job:step' && last.name === event.name && (last.state ?? 'running') === (event.state ?? 'running')) {
        // A step moving again, in the same state: latest wins, like `update()`.
        const merged: typeof event = { ...last, ...event };
        if (event.progress === undefined && last.progress !== undefined) merged.progress = last.progress;
        if (event.text === undefined && last.text !== undefined) merged.text = last.text;
        entry.events[entry.events.length - 1] = merged;
      } else if (event.type === 'job:progress' && last?.type === 'job:progress') {
        // Progress is latest-wins: one still waiting to be written is overtaken by the next, which
        // carries both values. A flood then costs the store (and every watcher) a row per write, not per call.
        const progress = event.progress !== undefined ? event.progress : last.progress;
        const text = event.text !== undefined ? event.text : last.text;
        entry.events[entry.events.length - 1] = {
          type: 'job:progress',
          ...(progress !== undefined ? { progress } : {}),
          ...(text !== undefined ? { text } : {}),
        };
      } else {
        entry.events.push(event);
      }
    }
    if (runner !== undefined) entry.runner = runner;
    this.scheduleFlush();
    return this.batch.done.promise;
  }

  /**
   * Queues a job's end. An end must reach the store: until it does, the job
   * reads `running` and its run holds a concurrency slot. A failed write
   * (Redis restarting, a full disk) is retried with backoff, each failure
   * reported through `error`, until it is stored or the writer closes; a job
   * still unended then is recovered as interrupted at the next start-up.
   */
  end(jobId: string, event: EndEventData): Promise<Map<string, AppendResult>> {
    for (const listener of this.listeners) listener.ending?.(jobId);
    return retryWithBackoff(() => this.write(jobId, [event]), () => this.closing);
  }

  /** Ends retries: what fails from now on stays failed. */
  close(): void {
    this.closing = true;
  }

  /** Resolves once everything reported so far is durable (or failed). */
  async drain(): Promise<void> {
    while (this.batch || this.flushing) {
      if (!this.flushing) this.flushBatch();
      await this.flushing?.catch(() => {});
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing) return;
    this.flushScheduled = true;
    const flush = () => {
      this.flushScheduled = false;
      this.flushBatch();
    };
    // One turn of the event loop, not a timer: reports made while a commit is in flight gather
    // into the next anyway, and a wider window under load (tried: 2 ms once 8 jobs report)
    // cut commits but cost many small jobs 45% of their throughput, each finish waiting it out.
    setImmediate(flush);
  }

  private flushBatch(): void {
    const batch = this.batch;
    if (!batch || this.flushing) return;
    this.batch = null;
    const entries = [...batch.entries].map(([jobId, { events, runner }]) => ({ jobId, events, ...(runner === undefined ? {} : { runner }) }));
    this.flushing = (async () => {
      let results: AppendResult[];
      try {
        results = await this.store.append(entries);
      } catch (error) {
        this.reportError(error);
        batch.done.reject(error);
        return;
      }
      const byJob = new Map<string, AppendResult>();
      entries.forEach((entry, i) => byJob.set(entry.jobId, results[i]!));
      for (const result of results) this.afterStored(result);
      batch.done.resolve(byJob);
    })().finally(() => {
      this.flushing = null;
      // Whatever arrived during the write goes out now, as one batch.
      if (this.batch) this.flushBatch();
    });
  }

  /** Tells the listeners and the bus about events that are now durable. */
  private afterStored({ events, job }: AppendResult): void {
    if (!job || events.length === 0) return;
    for (const listener of this.listeners) {
      try {
        listener.stored?.({ events, job });
      } catch (error) {
        this.reportError(error);
      }
    }
    this.bus.publish({ type: 'events', jobId: job.id, events }).catch((error) => this.reportError(error));
  }
}
