/**
 * The in-process bus and queue shared by the memory and SQLite backends: one
 * process both stores and runs its jobs, so "telling other processes" is a
 * plain listener list and the queue is an in-memory schedule with timers.
 */
import { MAX_TIMER_MS } from '../../core/options.js';
import type { Backend, BusMessage, BusNotice, Handover, JobBus, JobQueue, JobRecord, JobStore, RunOutcome } from '../../types.js';
import { queueKeyOf } from '../../core/records.js';

/** Delivers every message synchronously to every listener of this process. */
export class LocalBus implements JobBus {
  private readonly listeners = new Set<(notice: BusNotice) => void>();

  async publish(message: BusMessage): Promise<void> {
    for (const listener of [...this.listeners]) {
      try {
        listener(message);
      } catch (error) {
        // A broken subscriber (hub, core) must not stop the others from hearing the message.
        process.emitWarning(error instanceof Error ? error : String(error), { code: 'BACKJOB_BUS_LISTENER' });
      }
    }
  }

  subscribe(listener: (notice: BusNotice) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}

/**
 * Runs due jobs at most `concurrency` at once, taking them in rounds across
 * queue keys (`JobRecord.queueKey`: one per user, per anonymous address, and
 * one for the app's own starts), first in, first out within a key. Each key
 * with due jobs has one turn per round; a key that becomes due joins the
 * round under way unless it already had its turn in it. One owner's flood
 * then delays another owner's job by at most the job it is running per slot,
 * not by the whole flood, and no owner gets a second turn in a round by
 * emptying and refilling its queue. Delayed jobs wait on an unref'd timer so
 * a pending delay never keeps the process alive. Enqueueing a job id that is
 * already scheduled does nothing, so recovery may re-enqueue freely.
 */
export class LocalQueue implements JobQueue {
  /**
   * Keys yet to have their turn in this round, and keys that had it and wait
   * for the next: each with its due job ids, in the order they became due.
   * A Map keeps insertion order, so the first entry of `thisRound` is next.
   */
  private thisRound = new Map<string, Set<string>>();
  private nextRound = new Map<string, Set<string>>();
  /** Keys that had their turn in this round (also those with nothing left). */
  private readonly served = new Set<string>();
  /** The key each due job sits under, for `remove` and the duplicate check. */
  private readonly dueKey = new Map<string, string>();
  private readonly delayed = new Map<string, NodeJS.Timeout>();
  private readonly active = new Set<string>();
  private run: ((jobId: string, handover: Handover) => Promise<RunOutcome>) | null = null;
  private concurrency = 0;
  private closed = false;

  async enqueue(job: JobRecord): Promise<void> {
    if (this.closed || this.delayed.has(job.id) || this.active.has(job.id) || this.dueKey.has(job.id)) return;
    const wait = job.runAt - Date.now();
    if (wait > 0) {
      // A delay past what one timer holds waits in steps: each step re-enqueues until the job is due.
      const timer = setTimeout(() => {
        this.delayed.delete(job.id);
        void this.enqueue(job);
      }, Math.min(wait, MAX_TIMER_MS));
      timer.unref();
      this.delayed.set(job.id, timer);
      return;
    }
    const key = queueKeyOf(job);
    const jobs = this.jobsOf(key);
    if (jobs) jobs.add(job.id);
    else (this.served.has(key) ? this.nextRound : this.thisRound).set(key, new Set([job.id]));
    this.dueKey.set(job.id, key);
    this.pump();
  }

  async remove(jobId: string): Promise<void> {
    const timer = this.delayed.get(jobId);
    if (timer) {
      clearTimeout(timer);
      this.delayed.delete(jobId);
    }
    const key = this.dueKey.get(jobId);
    if (key === undefined) return;
    this.dueKey.delete(jobId);
    const jobs = this.jobsOf(key)!;
    jobs.delete(jobId);
    if (jobs.size === 0) this.thisRound.delete(key) || this.nextRound.delete(key);
  }

  private jobsOf(key: string): Set<string> | undefined {
    return this.thisRound.get(key) ?? this.nextRound.get(key);
  }

  /** The next job to run: the first of the key whose turn it is, which then waits for the next round. */
  private next(): string | undefined {
    if (this.thisRound.size === 0) {
      [this.thisRound, this.nextRound] = [this.nextRound, this.thisRound];
      this.served.clear();
    }
    const entry = this.thisRound.entries().next();
    if (entry.done) return undefined;
    const [key, jobs] = entry.value;
    const jobId: string = jobs.values().next().value!;
    jobs.delete(jobId);
    this.dueKey.delete(jobId);
    this.thisRound.delete(key);
    this.served.add(key);
    if (jobs.size > 0) this.nextRound.set(key, jobs);
    return jobId;
  }

  process(run: (jobId: string, handover: Handover) => Promise<RunOutcome>, concurrency: number): void {
    this.run = run;
    this.concurrency = concurrency;
    this.pump();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.thisRound.clear();
    this.nextRound.clear();
    this.dueKey.clear();
  }

  private pump(): void {
    const run = this.run;
    if (!run) return;
    while (!this.closed && this.active.size < this.concurrency && this.dueKey.size > 0) {
      const jobId = this.next()!;
      this.active.add(jobId);
      // `run` handles its own failures; a rejection here would only be a bug in it,
      // and must not stall the queue. A job it did not run (`later`) is still waiting or
      // running in the store: this process is closing, and the next start-up recovers it.
      void Promise.resolve()
        // Never lost: one process runs every job, and what a dead one left running is recovered at start-up (`orphans`).
        .then(() => run(jobId, { lost: false }))
        .catch((error) => process.emitWarning(error instanceof Error ? error : String(error), { code: 'BACKJOB_QUEUE_RUN' }))
        .finally(() => {
          this.active.delete(jobId);
          this.pump();
        });
    }
  }
}

/**
 * A backend whose jobs are stored by `store` and run in this process: the
 * in-process bus and queue around it. `orphans` lists the jobs a previous
 * process left running.
 */
export function localBackend(name: string, store: JobStore, orphans: () => Promise<JobRecord[]>): Backend {
  const bus = new LocalBus();
  const queue = new LocalQueue();
  return {
    name,
    store,
    bus,
    queue,
    orphans,
    async close() {
      await queue.close();
      await bus.close();
      await store.close();
    },
  };
}
