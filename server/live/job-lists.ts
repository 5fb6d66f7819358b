/**
 * Live lists of a principal's own jobs (the `list` message of the live
 * channel, behind `<backjob-jobs>`): a page read from the store, then a push
 * of every one of the principal's jobs that changed, coalesced to one
 * message per watcher every {@link LIST_PUSH_MS}, so a job flooding progress
 * costs a list watcher a few snapshots a second, not one per event.
 *
 * Who owns a job that just changed is learned from the store once per job
 * and remembered (bounded); with no list watched on this hub, events cost
 * nothing here at all.
 */
import { MAX_LIST_PAGE, listCursor, parseListCursor, type JobSnapshot, type JobStatus, type ServerMessage } from '../../shared/protocol.js';
import { toSnapshot } from '../core/records.js';
import type { JobRecord, JobStore } from '../types.js';

/** How often at most a list watcher hears of changes. */
export const LIST_PUSH_MS = 250;
/** Default page size. */
const DEFAULT_PAGE = 20;
/** Owners remembered per hub: enough for every job changing at once on a busy server; older ones are read again. */
const OWNER_CACHE = 10_000;

/**
 * Whose list shows `job`: a user's own list has top-level jobs only, so a
 * batch's thousand members do not flood it (they are shown through their batch).
 */
function listedBy(job: Pick<JobRecord, 'owner' | 'parent'>): string | null {
  return job.parent ? null : job.owner;
}

/** One socket watching its principal's jobs. */
interface ListWatch {
  readonly principal: string;
  readonly send: (message: ServerMessage) => void;
  /** Jobs changed since the last push. */
  readonly dirty: Set<string>;
  timer: NodeJS.Timeout | null;
  /** Unwatched (or the socket closed): a push still reading the store sends nothing. */
  active: boolean;
}

/** Every list watched through one hub. */
export class JobLists {
  private readonly watches = new Map<object, ListWatch>();
  private readonly byPrincipal = new Map<string, Set<ListWatch>>();
  /** Whose list shows each job: its owner; null for a job no list shows (nobody's, or a child, shown through its parent). */
  private readonly owners = new Map<string, string | null>();

  constructor(private readonly store: Pick<JobStore, 'get' | 'list'>) {}

  /**
   * A page of `principal`'s jobs; from now on `watcher` (one per socket:
   * a new call reads another page of the same list) hears of every change to them.
   */
  async watch(
    watcher: object,
    principal: string,
    send: (message: ServerMessage) => void,
    request: { status?: JobStatus[]; limit?: number; before?: string },
  ): Promise<{ jobs: JobSnapshot[]; next?: string }> {
    // Another page of the same socket's list ("show more", a new filter) keeps its watch: the rows
    // already shown stay live, and changes not pushed yet are still pushed.
    if (this.watches.get(watcher)?.principal !== principal) {
      this.unwatch(watcher);
      const watch: ListWatch = { principal, send, dirty: new Set(), timer: null, active: true };
      this.watches.set(watcher, watch);
      let set = this.byPrincipal.get(principal);
      if (!set) this.byPrincipal.set(principal, (set = new Set()));
      set.add(watch);
    }
    const limit = Math.min(request.limit ?? DEFAULT_PAGE, MAX_LIST_PAGE);
    const before = request.before === undefined ? undefined : (parseListCursor(request.before) ?? undefined);
    // One more than the page: whether there is a next page, without a count.
    const records = await this.store.list({ owner: principal, parent: null, limit: limit + 1, ...(request.status ? { status: request.status } : {}), ...(before ? { before } : {}) });
    for (const job of records) this.remember(job.id, listedBy(job));
    const page = records.slice(0, limit).map(toSnapshot);
    return records.length > limit ? { jobs: page, next: listCursor(page.at(-1)!) } : { jobs: page };
  }

  unwatch(watcher: object): void {
    const watch = this.watches.get(watcher);
    if (!watch) return;
    this.watches.delete(watcher);
    watch.active = false;
    if (watch.timer) clearTimeout(watch.timer);
    const set = this.byPrincipal.get(watch.principal);
    set?.delete(watch);
    if (set?.size === 0) this.byPrincipal.delete(watch.principal);
  }

  /** A job has new events: its owner's watchers will hear of it at their next push. */
  changed(jobId: string): void {
    if (this.byPrincipal.size === 0) return;
    if (this.owners.has(jobId)) return this.markDirty(jobId, this.owners.get(jobId)!);
    this.store.get(jobId).then(
      (job) => {
        if (!job) return;
        this.remember(jobId, listedBy(job));
        this.markDirty(jobId, listedBy(job));
      },
      () => {}, // a store hiccup costs a list one update; the next event of the job brings it
    );
  }

  /**
   * The bus may have missed events (see `BusNotice`): every watched
   * principal's jobs this hub knows of, and its newest page (jobs created
   * meanwhile), are pushed again at the next push.
   */
  resync(): void {
    if (this.byPrincipal.size === 0) return;
    for (const [jobId, owner] of this.owners) if (owner !== null && this.byPrincipal.has(owner)) this.markDirty(jobId, owner);
    for (const principal of this.byPrincipal.keys()) {
      this.store.list({ owner: principal, parent: null, limit: MAX_LIST_PAGE }).then(
        (jobs) => {
          for (const job of jobs) {
            this.remember(job.id, listedBy(job));
            this.markDirty(job.id, principal);
          }
        },
        () => {}, // a store still failing: the list hears of those jobs with their next change
      );
    }
  }

  close(): void {
    for (const watcher of [...this.watches.keys()]) this.unwatch(watcher);
  }

  private remember(jobId: string, owner: string | null): void {
    this.owners.delete(jobId);
    this.owners.set(jobId, owner);
    if (this.owners.size > OWNER_CACHE) this.owners.delete(this.owners.keys().next().value!);
  }

  private markDirty(jobId: string, owner: string | null): void {
    if (owner === null) return;
    for (const watch of this.byPrincipal.get(owner) ?? []) {
      watch.dirty.add(jobId);
      watch.timer ??= setTimeout(() => void this.push(watch), LIST_PUSH_MS);
    }
  }

  private async push(watch: ListWatch): Promise<void> {
    const ids = [...watch.dirty].slice(0, MAX_LIST_PAGE);
    for (const id of ids) watch.dirty.delete(id);
    let jobs: JobSnapshot[] = [];
    try {
      const records = await Promise.all(ids.map((id) => this.store.get(id)));
      jobs = records.flatMap((job) => (job && listedBy(job) === watch.principal ? [toSnapshot(job)] : []));
    } catch {
      // The store failed: those jobs are pushed again with their next change.
    }
    if (!watch.active) return;
    watch.timer = watch.dirty.size > 0 ? setTimeout(() => void this.push(watch), LIST_PUSH_MS) : null;
    if (jobs.length > 0) watch.send({ type: 'list:changed', jobs });
  }
}
