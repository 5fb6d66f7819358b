/**
 * A hand-written Connection for rendering tests: the test plays the server,
 * pushing snapshots, lines and socket states, and sees what the elements
 * asked for (watches, cancels). It keeps what it pushed so a late watcher
 * gets everything known so far, as the real connection promises.
 */
import { applyEvent, initialSnapshot, type JobEvent, type JobEventData, type JobSnapshot } from '../../shared/protocol.js';
import type { Connection, ConnectionState, JobList, ListPage, ListRequest, ListUpdate, WatchListener, WatchUpdate } from '../types.js';

interface Watched {
  snapshot?: JobSnapshot;
  lines: JobEvent[];
  error?: WatchUpdate['error'];
}

/** A `Connection` the test drives by hand; see the module comment. */
export class FakeConnection implements Connection {
  state: ConnectionState = 'open';
  /** What the server's hello would have told: its clock minus the browser's. */
  clockOffset = 0;
  /** Every `cancel` call, in order. */
  readonly cancels: Array<{ jobId: string; token?: string }> = [];
  /** Makes the next cancels reject with this message. */
  cancelFailure?: string;

  /** The user's jobs, newest first, as the server would list them; pages are cut from it. */
  listed: JobSnapshot[] = [];
  /** Every page asked for, in order. */
  readonly pageRequests: ListRequest[] = [];
  /** Makes the next pages reject with this code (e.g. `BACKJOB_ERR_UNAUTHORIZED`). */
  listFailure?: string;
  private readonly listListeners = new Set<(update: ListUpdate) => void>();

  private readonly jobs = new Map<string, Watched>();
  private readonly listeners = new Map<string, Set<WatchListener>>();

  watch(jobId: string, _token: string | undefined, listener: WatchListener): () => void {
    const known = this.job(jobId);
    let set = this.listeners.get(jobId);
    if (!set) this.listeners.set(jobId, (set = new Set()));
    set.add(listener);
    listener({
      connection: this.state,
      ...(known.snapshot && { snapshot: known.snapshot }),
      ...(known.lines.length && { lines: [...known.lines] }),
      ...(known.error && { error: known.error }),
    });
    return () => set.delete(listener);
  }

  async cancel(jobId: string, token?: string): Promise<void> {
    this.cancels.push({ jobId, token });
    if (this.cancelFailure) throw new Error(this.cancelFailure);
  }

  listJobs(listener: (update: ListUpdate) => void): JobList {
    this.listListeners.add(listener);
    return {
      page: async (request: ListRequest = {}): Promise<ListPage> => {
        this.pageRequests.push(request);
        if (this.listFailure) throw Object.assign(new Error(this.listFailure), { code: this.listFailure });
        const matching = this.listed.filter((job) => !request.status || request.status.includes(job.status));
        const from = request.before ? matching.findIndex((job) => `${job.createdAt}.${job.id}` === request.before) + 1 : 0;
        const jobs = matching.slice(from, from + (request.limit ?? 20));
        const more = from + jobs.length < matching.length;
        return more ? { jobs, next: `${jobs.at(-1)!.createdAt}.${jobs.at(-1)!.id}` } : { jobs };
      },
      close: () => this.listListeners.delete(listener),
    };
  }

  /** Pushes a change to every list, as the server's `list:changed` does (and updates `listed`). */
  pushList(...changed: JobSnapshot[]): void {
    for (const job of changed) {
      const at = this.listed.findIndex((known) => known.id === job.id);
      if (at === -1) this.listed.unshift(job);
      else this.listed[at] = job;
    }
    for (const listener of [...this.listListeners]) listener({ changed });
  }

  /** How many lists are open right now. */
  lists(): number {
    return this.listListeners.size;
  }

  /** How many elements watch `jobId` right now. */
  watchers(jobId: string): number {
    return this.listeners.get(jobId)?.size ?? 0;
  }

  /** Sets the job's snapshot: `changes` over the current (or a fresh) one, with the next seq. */
  snapshot(jobId: string, changes: Partial<JobSnapshot>): JobSnapshot {
    const known = this.job(jobId);
    const base = known.snapshot ?? initialSnapshot(jobId, 'test job', Date.now());
    const snapshot: JobSnapshot = { ...base, seq: base.seq + 1, ...changes };
    known.snapshot = snapshot;
    this.send(jobId, { snapshot });
    return snapshot;
  }

  /**
   * Folds events into the job's snapshot as the real connection does
   * (`applyEvent`, the protocol's own fold), then sends it once, as one
   * `events` frame does.
   */
  apply(jobId: string, ...events: JobEventData[]): JobSnapshot {
    const known = this.job(jobId);
    let snapshot = known.snapshot ?? initialSnapshot(jobId, 'test job', Date.now());
    for (const data of events) snapshot = applyEvent(snapshot, { ...data, jobId, seq: snapshot.seq + 1, at: Date.now() } as JobEvent);
    known.snapshot = snapshot;
    this.send(jobId, { snapshot });
    return snapshot;
  }

  /** Appends log lines, numbered after the snapshot's seq. */
  log(jobId: string, ...lines: string[]): void {
    const known = this.job(jobId);
    let seq = Math.max(known.snapshot?.seq ?? 0, known.lines.at(-1)?.seq ?? 0);
    const events = lines.map((line) => ({ type: 'job:log', line, jobId, seq: ++seq, at: Date.now() }) as JobEvent);
    known.lines.push(...events);
    if (known.snapshot) known.snapshot = { ...known.snapshot, seq, logLines: known.snapshot.logLines + lines.length };
    this.send(jobId, { lines: events, ...(known.snapshot && { snapshot: known.snapshot }) });
  }

  /** Changes the socket's state for every watcher. */
  setState(state: ConnectionState): void {
    this.state = state;
    for (const jobId of this.listeners.keys()) this.send(jobId, { connection: state });
    for (const listener of [...this.listListeners]) listener({ connection: state });
  }

  /** The server refused the job. */
  refuse(jobId: string, code: 'BACKJOB_ERR_FORBIDDEN' | 'BACKJOB_ERR_NOT_FOUND', message: string): void {
    this.job(jobId).error = { code, message };
    this.send(jobId, { error: { code, message } });
  }

  /** Sends an arbitrary update (e.g. `reset`) to the job's watchers. */
  send(jobId: string, update: WatchUpdate): void {
    for (const listener of [...(this.listeners.get(jobId) ?? [])]) listener(update);
  }

  private job(jobId: string): Watched {
    let known = this.jobs.get(jobId);
    if (!known) this.jobs.set(jobId, (known = { lines: [] }));
    return known;
  }
}
