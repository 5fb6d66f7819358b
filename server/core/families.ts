/**
 * Job families: children a handler spawns, and the members of a batch. A
 * child is an ordinary job that knows its `parent` (and `root`); everything
 * a family needs besides is done here, by events, so it works whichever
 * process runs which member:
 *
 * - aggregation: once a child's events are durable, the process that wrote
 *   them appends a `job:child` (the child as its parent shows it) to the
 *   parent's log, gathered for a few ms and coalesced per child; the shared
 *   fold derives the parent's progress and keeps a child's end final;
 * - an ended parent cancels its children still live (which cascades down);
 *   a child whose parent ended never starts;
 * - a parent waits for a child by the bus (the child's own end, from any
 *   process), checked against the store, so nothing is polled;
 * - a batch ends when its last member ended, written by whoever stored that
 *   member's news.
 */
import { isEndEvent, isEnded, type ChildSnapshot } from '../../shared/protocol.js';
import { BackjobError } from '../errors.js';
import { retryWithBackoff } from './backoff.js';
import type { ReportError } from './emitter.js';
import type { EventSink, WriteListener } from './event-writer.js';
import type { BusNotice, ChildJob, ChildOutcome, JobEvent, JobQueue, JobRecord, JobSpec, JobStore, NewJob, SpawnOptions } from '../types.js';

/** How long children's news gathers before it is written to their parents (see `Families.tellParent`). */
const NEWS_MS = 25;

/** Children one job may spawn, and members one batch may have. */
export const MAX_CHILDREN = 1_000;

/** The child as its parent's snapshot shows it. */
export function childSnapshot(job: JobRecord): ChildSnapshot {
  const child: ChildSnapshot = { id: job.id, name: job.name, weight: job.weight ?? 1, status: job.status, progress: job.progress };
  if (job.title !== undefined) child.title = job.title;
  if (job.text) child.text = job.text;
  if (job.errorCode !== undefined) child.errorCode = job.errorCode;
  return child;
}

/** How an ended child ended. */
export function outcomeOf(job: JobRecord): ChildOutcome {
  const outcome: ChildOutcome = { id: job.id, status: job.status as ChildOutcome['status'] };
  if (job.result !== undefined) outcome.result = job.result;
  if (job.error !== undefined) outcome.error = job.error;
  if (job.errorCode !== undefined) outcome.errorCode = job.errorCode;
  return outcome;
}

/** The error of a parent (or of `result()`) whose child did not complete. */
export function childFailed(job: JobRecord): BackjobError {
  const why = job.error ? `: ${job.error}` : '';
  return new BackjobError('BACKJOB_ERR_CHILD_FAILED', `Child job ${job.id} (${job.name}) ${job.status}${why}`);
}

export interface FamiliesDeps {
  store: JobStore;
  queue: JobQueue;
  writer: EventSink;
  /** The core's cancel (records the end, cascades through the listener below). */
  cancel(id: string, reason: string): Promise<boolean>;
  /** Builds a child of `parent` from a spec: its owner and queue turn are the parent's. */
  buildChild(parent: JobRecord, spec: JobSpec, fields: Pick<NewJob, 'spawn' | 'weight' | 'title'>): Promise<NewJob>;
  reportError: ReportError;
  /** True once the shim closes: retries stop. */
  closing(): boolean;
}

export class Families implements WriteListener {
  /** Ends someone in this process waits for, by child id. */
  private readonly waiting = new Map<string, { promise: Promise<JobRecord>; resolve(job: JobRecord): void }>();
  /** Children's news not yet written, by parent, latest per child (see {@link tellParent}). */
  private news = new Map<string, Map<string, ChildSnapshot>>();
  private newsTimer: NodeJS.Timeout | null = null;
  /** Batches whose end is being written here (so two members ending together write it once). */
  private readonly endingBatches = new Set<string>();
  /** Family work under way that `settle()` waits for: cancels of an ended parent's children, batch ends. */
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly deps: FamiliesDeps) {}

  // ───────────────────────────── spawning ─────────────────────────────

  /**
   * Creates the child `index` of `parent` (or finds the one an earlier run of
   * the parent spawned there), records it on the parent, and queues it.
   */
  async spawn(parent: JobRecord, index: number, spec: JobSpec, options: SpawnOptions, earlier: () => Promise<JobRecord[]>): Promise<JobRecord> {
    const { store, writer, queue } = this.deps;
    if (index >= MAX_CHILDREN) throw new BackjobError('BACKJOB_ERR_INVALID', `A job may spawn at most ${MAX_CHILDREN} children`);
    // A re-run (the parent's process died): the child of this place already exists.
    const found = parent.attempt > 0 ? (await earlier()).find((child) => child.spawn === index) : undefined;
    if (found) return found;
    const fields: Pick<NewJob, 'spawn' | 'weight' | 'title'> = { spawn: index };
    if (options.weight !== undefined) fields.weight = options.weight;
    if (options.title !== undefined) fields.title = options.title;
    const { job: child } = await store.create(await this.deps.buildChild(parent, spec, fields));
    const written = (await writer.write(parent.id, [{ type: 'job:child', child: childSnapshot(child) }])).get(parent.id);
    if (!written?.events.length) {
      // The parent ended meanwhile: its child must not run.
      await this.deps.cancel(child.id, 'parent ended');
      throw new BackjobError('BACKJOB_ERR_ENDED', `Job ${parent.id} already ended: no new children`);
    }
    await queue.enqueue(child);
    return child;
  }

  /** The children of a job, as stored. */
  childrenOf(id: string): Promise<JobRecord[]> {
    return this.deps.store.list({ parent: id });
  }

  /**
   * Whether a job handed over by the queue may run: a batch never runs (its
   * members do the work), and a child whose parent ended is canceled instead.
   */
  async mayRun(job: JobRecord): Promise<boolean> {
    if (job.batch) return false;
    if (job.parent === undefined) return true;
    const parent = await this.deps.store.get(job.parent);
    if (parent && !isEnded(parent.status)) return true;
    await this.deps.writer.end(job.id, { type: 'job:canceled', reason: 'parent ended' });
    return false;
  }

  // ───────────────────────────── waiting ─────────────────────────────

  /** Resolves with the child once it ended, however and wherever that happened. */
  awaitEnd(id: string): Promise<JobRecord> {
    let entry = this.waiting.get(id);
    if (!entry) {
      let resolve!: (job: JobRecord) => void;
      const promise = new Promise<JobRecord>((res) => (resolve = res));
      this.waiting.set(id, (entry = { promise, resolve }));
      // Registered first, then read: an end stored in between is heard either way.
      this.check(id);
    }
    return entry.promise;
  }

  /** Reads a waited-for job, and resolves its waiters if it ended. */
  private check(id: string): void {
    this.deps.store
      .get(id)
      .then((job) => {
        const entry = this.waiting.get(id);
        if (!entry || (job && !isEnded(job.status))) return;
        this.waiting.delete(id);
        // A child deleted under its parent (by hand: retention never does) counts as canceled.
        entry.resolve(job ?? ({ id, name: '?', status: 'canceled', error: 'deleted' } as JobRecord));
      })
      .catch((error: unknown) => this.deps.reportError(error));
  }

  /** A notice of the bus: a waited-for child's end, from any process; after a resync, read them all again. */
  onBus(notice: BusNotice): void {
    if (notice.type === 'resync') {
      for (const id of this.waiting.keys()) this.check(id);
    } else if (this.waiting.has(notice.jobId) && notice.events.some((event) => isEndEvent(event))) {
      this.check(notice.jobId);
    }
  }

  // ───────────────────────────── downstream of the writer ─────────────────────────────

  /** Events of a job are durable (a listener of the event writer). */
  stored({ job, events }: { job: JobRecord; events: JobEvent[] }): void {
    if (job.parent !== undefined && events.some((event) => event.type !== 'job:log')) this.tellParent(job);
    if (isEnded(job.status)) {
      if (events.some((event) => isEndEvent(event)) && (job.children?.length || job.batch)) this.track(this.cancelChildren(job));
    } else if (job.batch && events.some((event) => event.type === 'job:child')) {
      this.endBatchIfDone(job);
    }
  }

  /**
   * An ended child, as its parent's run heard of it (see {@link FamilyRun.spawn}):
   * written at once, ahead of whatever the parent's handler does next (its own
   * end, say), so the parent never ends showing a child that ended as running.
   */
  tellParentOf(child: JobRecord, parentId: string): void {
    if (child.parent !== parentId) return;
    this.news.get(parentId)?.delete(child.id);
    const write = () => this.deps.writer.write(parentId, [{ type: 'job:child', child: childSnapshot(child) }]);
    retryWithBackoff(write, () => this.deps.closing()).catch(() => {});
  }

  /**
   * Queues the child's news for its parent's log (dropped there if the parent
   * ended: ended is final). News is gathered for {@link NEWS_MS}, latest per
   * child, then written as one append per parent: a batch of a thousand busy
   * members then rewrites its row a few dozen times a second, not once per
   * member write. Once the shim closes, news goes out at once.
   */
  private tellParent(child: JobRecord): void {
    let news = this.news.get(child.parent!);
    if (!news) this.news.set(child.parent!, (news = new Map()));
    news.set(child.id, childSnapshot(child));
    if (this.deps.closing()) void this.flushNews();
    else this.newsTimer ??= setTimeout(() => void this.flushNews(), NEWS_MS);
  }

  /** Keeps `work` until it settles, so that close waits for it (it never rejects: failures are reported). */
  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  /**
   * Resolves once no family work is left: the news gathered so far is written,
   * and every cancel of an ended parent's children and every batch end under
   * way is done, including what those wrote in turn. What `close()` waits for,
   * so the backend is never closed under a cancel: the waiting children of a
   * canceled batch would otherwise run at the next start.
   */
  async settle(): Promise<void> {
    do {
      await this.flushNews();
      await Promise.all(this.inFlight);
    } while (this.inFlight.size > 0 || this.news.size > 0);
  }

  /** Writes the news gathered so far; resolves once it is durable (or failed for good). */
  async flushNews(): Promise<void> {
    if (this.newsTimer) clearTimeout(this.newsTimer);
    this.newsTimer = null;
    const all = this.news;
    this.news = new Map();
    await Promise.all(
      [...all].map(([parent, news]) => {
        const events = [...news.values()].map((child) => ({ type: 'job:child' as const, child }));
        const write = () => this.deps.writer.write(parent, events);
        // A child's end must reach its parent (a batch ends on it): retried like any end.
        const done = events.some((event) => isEnded(event.child.status)) ? retryWithBackoff(write, () => this.deps.closing()) : write();
        return done.catch(() => {}); // the writer reports a failed write once
      }),
    );
  }

  private async cancelChildren(job: JobRecord): Promise<void> {
    try {
      const live = await this.deps.store.list({ parent: job.id, status: ['waiting', 'running'] });
      const reason = job.batch ? `batch ${job.status}` : `parent ${job.status}`;
      await Promise.all(live.map((child) => this.deps.cancel(child.id, reason)));
    } catch (error) {
      this.deps.reportError(error);
    }
  }

  private endBatchIfDone(batch: JobRecord): void {
    const members = batch.children ?? [];
    if (members.length < (batch.members ?? 0) || !members.every((member) => isEnded(member.status))) return;
    if (this.endingBatches.has(batch.id)) return;
    this.endingBatches.add(batch.id);
    this.track(
      this.endBatch(batch.id)
        .catch((error: unknown) => this.deps.reportError(error))
        .finally(() => this.endingBatches.delete(batch.id)),
    );
  }

  /** Ends a batch whose members all ended: completed with their outcomes, or failed / canceled. */
  private async endBatch(id: string): Promise<void> {
    const { store, writer } = this.deps;
    const batch = await store.get(id);
    if (!batch || isEnded(batch.status)) return;
    const members = await store.list({ parent: id });
    // The parent's row said so; the members' own rows are the truth.
    if (members.length < (batch.members ?? 0) || !members.every((member) => isEnded(member.status))) return;
    const outcomes = members.sort((a, b) => (a.spawn ?? 0) - (b.spawn ?? 0)).map(outcomeOf);
    const failed = outcomes.filter((o) => o.status === 'failed').length;
    const canceled = outcomes.filter((o) => o.status === 'canceled').length;
    const of = `of ${outcomes.length} members`;
    await writer.end(
      id,
      failed > 0
        ? { type: 'job:failed', reason: `${failed} ${of} failed`, code: 'BACKJOB_ERR_CHILD_FAILED' }
        : canceled > 0
          ? { type: 'job:canceled', reason: `${canceled} ${of} canceled` }
          : { type: 'job:completed', result: { members: outcomes } },
    );
  }

  /**
   * A batch found running at start-up (its members' last news may have been
   * lost with the process that wrote it): tell it each member as it is now,
   * which ends it if they all ended.
   */
  async resume(batch: JobRecord): Promise<void> {
    const members = await this.deps.store.list({ parent: batch.id });
    if (members.length === 0) return void (await this.deps.writer.end(batch.id, { type: 'job:canceled', reason: 'interrupted before its members were created' }));
    await this.deps.writer.write(batch.id, members.reverse().map((member) => ({ type: 'job:child', child: childSnapshot(member) })));
  }
}

/**
 * The children of one job as its run sees them, shared by every context of
 * the job in this process: their places, and which of them the handler takes
 * care of itself (`optional`, or `result()` asked for).
 */
export class FamilyRun {
  private readonly kids: Array<{ child: ChildJob; optional: boolean; handled: boolean; end: Promise<JobRecord> }> = [];
  private next = 0;
  private earlier: Promise<JobRecord[]> | null = null;

  constructor(
    private readonly families: Families,
    private readonly parent: JobRecord,
    /** Fails the parent (a child failed that nobody takes care of). */
    private readonly failParent: (error: Error) => void,
  ) {}

  async spawn(spec: JobSpec, options: SpawnOptions): Promise<ChildJob> {
    const index = this.next++;
    const earlier = () => (this.earlier ??= this.families.childrenOf(this.parent.id));
    const record = await this.families.spawn(this.parent, index, spec, options, earlier);
    const entry = { optional: options.optional === true, handled: false, end: this.families.awaitEnd(record.id), child: null as unknown as ChildJob };
    entry.child = {
      id: record.id,
      result: () => {
        entry.handled = true;
        return entry.end.then((job) => {
          if (job.status !== 'completed') throw childFailed(job);
          return job.result;
        });
      },
    };
    void entry.end.then((job) => {
      // The child's end as the parent heard it: if the news its writer owed the parent was lost (that
      // process died right after the end), the parent's row is put right here (a duplicate changes nothing).
      this.families.tellParentOf(job, this.parent.id);
      if (job.status !== 'completed' && !entry.optional && !entry.handled) this.failParent(childFailed(job));
    });
    this.kids.push(entry);
    return entry.child;
  }

  children(): ChildJob[] {
    return this.kids.map((kid) => kid.child);
  }

  async waitForChildren(): Promise<ChildOutcome[]> {
    for (const kid of this.kids) kid.handled = true;
    return (await Promise.all(this.kids.map((kid) => kid.end))).map(outcomeOf);
  }

  /** Waits for every child; the error the parent then fails with, if one failed that nobody took care of. */
  async settle(): Promise<Error | null> {
    const ends = await Promise.all(this.kids.map((kid) => kid.end));
    const failed = ends.findIndex((job, i) => job.status !== 'completed' && !this.kids[i]!.optional && !this.kids[i]!.handled);
    return failed < 0 ? null : childFailed(ends[failed]!);
  }
}
