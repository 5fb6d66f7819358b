/**
 * The in-memory backend: for tests and for apps that want no persistence.
 * Everything lives in this process and is gone when it exits.
 */
import { randomBytes } from 'node:crypto';
import { isEnded } from '../../../shared/protocol.js';
import type { AppendResult, Backend, JobEvent, JobEventData, JobRecord, JobStore, ListFilter, NewJob } from '../../types.js';
import { localBackend } from './local.js';
import { appendToRecord, createRecord, isActive, overQuota, queueKeyOf } from '../../core/records.js';

/**
 * Round-trips through JSON so a caller mutating what it passed in or got back
 * cannot change stored data, and so values look exactly as a persistent
 * store would return them (`undefined` fields dropped, dates as strings).
 */
function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

/** Whether an ended job is past the retention cutoffs of `deleteEnded`. */
function isOld(job: JobRecord, opts: { completedBefore?: number; endedBefore?: number }): boolean {
  if (!isEnded(job.status) || job.endedAt === undefined) return false;
  return (
    (opts.completedBefore !== undefined && job.status === 'completed' && job.endedAt < opts.completedBefore) ||
    (opts.endedBefore !== undefined && job.endedAt < opts.endedBefore)
  );
}

/**
 * A {@link JobStore} in plain maps. JavaScript runs each method to completion
 * before the next, which makes every method atomic without locks.
 */
export class MemoryStore implements JobStore {
  /** Insertion order is creation order, which `list` relies on for ties. */
  private readonly jobs = new Map<string, JobRecord>();
  private readonly events = new Map<string, JobEvent[]>();
  private readonly credentials = new Map<string, string>();
  private readonly activeByMergeKey = new Map<string, string>();
  /** How many jobs wait per queue key, for the quota: counted as jobs come and go, never by a scan. */
  private readonly waitingByQueueKey = new Map<string, number>();
  private readonly secretValue = randomBytes(32).toString('base64url');

  async create(job: NewJob, options: { maxWaiting?: number } = {}): Promise<{ job: JobRecord; merged: boolean }> {
    if (job.mergeKey !== null) {
      const existing = this.jobs.get(this.activeByMergeKey.get(job.mergeKey) ?? '');
      if (existing && isActive(existing)) return { job: clone(existing), merged: true };
    }
    const queueKey = queueKeyOf(job);
    const waiting = this.waitingByQueueKey.get(queueKey) ?? 0;
    if (options.maxWaiting && waiting >= options.maxWaiting) throw overQuota(options.maxWaiting);
    this.waitingByQueueKey.set(queueKey, waiting + 1);
    const { record, event } = createRecord(clone(job));
    this.jobs.set(record.id, record);
    this.events.set(record.id, [event]);
    if (job.credentials !== undefined) this.credentials.set(record.id, job.credentials);
    if (record.mergeKey !== null) this.activeByMergeKey.set(record.mergeKey, record.id);
    return { job: clone(record), merged: false };
  }

  async append(batch: Array<{ jobId: string; events: JobEventData[]; runner?: string | null }>): Promise<AppendResult[]> {
    const at = Date.now();
    return batch.map(({ jobId, events, runner }) => {
      const current = this.jobs.get(jobId);
      if (!current) return { events: [], job: null };
      const { record, stored } = appendToRecord(current, clone(events), runner, at);
      if (current.status === 'waiting' && record.status !== 'waiting') this.stopWaiting(record);
      this.jobs.set(jobId, record);
      this.events.get(jobId)!.push(...stored);
      if (isEnded(record.status) && stored.length > 0) {
        if (record.mergeKey !== null) this.activeByMergeKey.delete(record.mergeKey);
        this.credentials.delete(jobId);
      }
      return { events: clone(stored), job: clone(record) };
    });
  }

  private stopWaiting(job: JobRecord): void {
    const key = queueKeyOf(job);
    const left = (this.waitingByQueueKey.get(key) ?? 1) - 1;
    if (left > 0) this.waitingByQueueKey.set(key, left);
    else this.waitingByQueueKey.delete(key);
  }

  async get(id: string): Promise<JobRecord | null> {
    return clone(this.jobs.get(id) ?? null);
  }

  async eventsAfter(id: string, afterSeq: number, limit: number): Promise<JobEvent[]> {
    const events = this.events.get(id) ?? [];
    // seq n sits at index n - 1: the log has no gaps.
    return clone(events.slice(Math.max(0, afterSeq), Math.max(0, afterSeq) + Math.max(0, limit)));
  }

  async list(filter: ListFilter): Promise<JobRecord[]> {
    const statuses = filter.status === undefined ? null : new Set([filter.status].flat());
    // Newest first: creation order backwards, then a stable sort fixes any clock skew.
    const ordered = [...this.jobs.values()]
      .filter((job) => (filter.owner === undefined || job.owner === filter.owner) && (filter.parent === undefined || (job.parent ?? null) === filter.parent))
      .reverse();
    ordered.sort((a, b) => b.createdAt - a.createdAt);
    const { before } = filter;
    // After the cursor's job, found before the status filter (it may have left it since); when it is
    // gone, after every job created at or before its time (same-ms ties then also go).
    let from = 0;
    if (before) {
      const at = ordered.findIndex((job) => job.id === before.id);
      from = at !== -1 ? at + 1 : ordered.findIndex((job) => job.createdAt < before.createdAt);
      if (from === -1) from = ordered.length;
    }
    const found = ordered.slice(from).filter((job) => !statuses || statuses.has(job.status));
    return clone(filter.limit === undefined ? found : found.slice(0, filter.limit));
  }

  async takeCredentials(id: string): Promise<string | null> {
    const value = this.credentials.get(id) ?? null;
    this.credentials.delete(id);
    return value;
  }

  async deleteEnded(opts: { completedBefore?: number; endedBefore?: number }): Promise<number> {
    const families = new Map<string, JobRecord[]>();
    for (const job of this.jobs.values()) {
      const root = job.root ?? job.id;
      let family = families.get(root);
      if (!family) families.set(root, (family = []));
      family.push(job);
    }
    let deleted = 0;
    for (const [rootId, family] of families) {
      // A family goes as one, by its root's end, and only once every member ended.
      const root = this.jobs.get(rootId);
      if (!root || !isOld(root, opts) || !family.every((job) => isEnded(job.status))) continue;
      for (const { id } of family) {
        this.jobs.delete(id);
        this.events.delete(id);
        this.credentials.delete(id);
        deleted++;
      }
    }
    return deleted;
  }

  async secret(): Promise<string> {
    return this.secretValue;
  }

  async close(): Promise<void> {}
}

/**
 * A backend that keeps jobs in this process's memory: fast, and gone on exit.
 * Jobs never outlive the process, so there are never orphans to recover.
 */
export function memory(): Backend {
  return localBackend('memory', new MemoryStore(), async () => []);
}
