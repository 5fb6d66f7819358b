/**
 * The job store on Redis: one JSON row per job, and the job's event log as a
 * Redis Stream whose entry ids are the seqs (`<seq>-0`), so "events after N"
 * is one `XRANGE` and resume works from any process.
 *
 * Every write folds in JS, with the rules all stores share (`core/records.ts`, over
 * `applyEvent`), then commits with a small Lua script that is only a
 * compare-and-set: "if each job's log still ends at the seq I read, write these
 * rows and entries". The fold is never written twice. The script (rather than
 * WATCH/MULTI) is worth it for outages: ioredis resends commands whose reply
 * was lost when Redis went away, and a resent MULTI/EXEC would run without its
 * WATCH; a resent script re-checks, and recognises its own entries (each
 * carries the id of the write that added it), so nothing is written twice.
 * Appends are group-committed: every append pending in this process goes in
 * the next script call. The rows this process last wrote (or its queue's
 * claim last read) are kept in memory, so a batch of jobs it already knows is
 * one round trip; the script's seq check is what makes that safe (a row
 * another process changed fails the check, is read again and the batch
 * folded anew).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { isEnded } from '../../../shared/protocol.js';
import type { AppendResult, JobEvent, JobEventData, JobRecord, JobStore, ListFilter, NewJob } from '../../types.js';
import { RedisKeys } from './keys.js';
import { luaScript } from './lua.js';
import { deleteEndedFamilies } from './retention.js';
import { appendToRecord, createRecord, isActive, overQuota, queueKeyOf } from '../../core/records.js';

/** Rows kept in memory for the next append (jobs this process writes to; oldest dropped first). */
const MAX_CACHED_ROWS = 2_000;

/** How long a write keeps retrying through a Redis outage before it gives up. */
const OUTAGE_GRACE_MS = 60_000;

/** The scripts of the store: each a compare-and-set (see the module doc and `lua/`). */
const APPEND_LUA = luaScript('append', 'last-seq');
const CREATE_LUA = luaScript('create', 'last-seq', 'fair-list');

type ScriptClient = Redis & {
  backjobAppend(numKeys: number, ...keysThenArgs: string[]): Promise<0 | 1 | 2>;
  backjobCreate(numKeys: number, ...keysThenArgs: string[]): Promise<0 | 1 | 2 | 3 | 4>;
};

interface PlannedJob {
  jobId: string;
  events: JobEvent[];
  job: JobRecord | null;
}

type AppendEntry = { jobId: string; events: JobEventData[]; runner?: string | null };

/**
 * What the queue asks of a create (see the constructor): `lease` is called as
 * a creation that cannot be refused or merged is about to be sent, and names
 * this process's worker if it has a slot free for the job (kept for it until
 * `settled`); `settled` hears what came of that attempt: `leased` (the script
 * leased the job to that worker: it is the worker's to run, from `json`),
 * `listed` (created and listed for any worker), or `failed` (not created, or
 * unknown: an outage).
 */
export interface CreateHook {
  lease(job: JobRecord): { worker: string; expiry: number } | null;
  settled(job: JobRecord, lease: { worker: string; expiry: number } | null, outcome: 'leased' | 'listed' | 'failed', json: string): void;
}

type StreamEntry = [id: string, fields: string[]];

function parseEntries(entries: StreamEntry[]): JobEvent[] {
  return entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('e') + 1]!) as JobEvent);
}

/** Whether `error` means Redis was unreachable (the command may be retried) rather than a bug. */
function isOutage(error: unknown): boolean {
  return /connection|closed|ECONN|EPIPE|LOADING|reconnect/i.test(String((error as Error)?.message ?? error));
}

/**
 * A `JobStore` on Redis, on one connection (which must wait through outages:
 * `maxRetriesPerRequest: null`).
 */
export class RedisJobStore implements JobStore {
  readonly keys: RedisKeys;
  readonly #redis: ScriptClient;
  /** Appends waiting for the write in flight; they go together in the next one. */
  #pending: Array<{ batch: AppendEntry[]; resolve: (results: AppendResult[]) => void; reject: (error: unknown) => void }> = [];
  #flushing = false;
  /**
   * The row as this process last wrote it, per job that has not ended. Only a
   * guess: a write folded from it commits only if the job's log still ends at
   * its seq.
   */
  readonly #rows = new Map<string, JobRecord>();
  #created = 0;
  /** Names this store's writes: a random prefix per process, then a counter. */
  readonly #writer = randomBytes(8).toString('hex');
  #writes = 0;
  /** Where each append also publishes its events (see `publishAppends`). */
  #announce: { channel: string; origin: string; own: string } | null = null;
  /** Event lists `append` returned that its own script already published. */
  readonly #published = new WeakSet<JobEvent[]>();
  #closed = false;

  readonly #hook: CreateHook | undefined;
  readonly #fairPrefix: string;

  /**
   * `fairPrefix`, if given, is where the queue's fair lists are (`fair.ts`):
   * the create script lists every job it creates there in the same step, so
   * no worker can claim a job whose row does not exist yet, and creating and
   * enqueueing cost one round trip. `hook`, if given, hears of each such job
   * (unless it has a merge key: it may join another job instead; or a quota:
   * it may be refused; either is enqueued by the caller once created), so the
   * queue's `enqueue` that follows needs no round trip of its own; and when
   * this process's worker has a slot free and nothing else is due, the same
   * script leases the job to it (see `CreateHook`, `fair-list.lua`): no wake,
   * no claim.
   */
  constructor(redis: Redis, prefix: string, options: { fairPrefix?: string; hook?: CreateHook } = {}) {
    redis.defineCommand('backjobAppend', { lua: APPEND_LUA });
    redis.defineCommand('backjobCreate', { lua: CREATE_LUA });
    this.#redis = redis as ScriptClient;
    this.keys = new RedisKeys(prefix);
    this.#fairPrefix = options.fairPrefix ?? '';
    this.#hook = options.hook;
  }

  /**
   * Makes every append publish the events it wrote on `channel`, as one
   * `{ from: origin, messages }` envelope per write, in the same script as the
   * write: no round trip of its own, and no watcher hears of an event before
   * it is stored. The bus then skips what {@link wasPublished} confirms.
   * `own` is a channel only this process's bus subscribes to, with the same
   * command as to `channel`: when the script sees that the one subscriber of
   * `channel` is that one, nobody else listens and it publishes nothing (this
   * process hears its writes directly).
   */
  publishAppends(channel: string, origin: string, own: string): void {
    this.#announce = { channel, origin, own };
  }

  /** Whether `events` (as returned by `append`) were already published by the append's script. */
  wasPublished(events: JobEvent[]): boolean {
    return this.#published.has(events);
  }

  #writeId(): string {
    return `${this.#writer}.${(this.#writes++).toString(36)}`;
  }

  /**
   * Runs `attempt` until it returns a value: `undefined` means another writer
   * got there first (read again); an outage is waited out for a while.
   */
  async #retry<T>(attempt: () => Promise<T | undefined>): Promise<T> {
    const giveUpAt = Date.now() + OUTAGE_GRACE_MS;
    for (let round = 0; ; round++) {
      try {
        const result = await attempt();
        if (result !== undefined) return result;
      } catch (error) {
        if (this.#closed || Date.now() > giveUpAt || !isOutage(error)) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
      // Under contention, give the other writer a moment to finish.
      if (round > 2) await new Promise((r) => setTimeout(r, Math.min(50, round * 2)));
    }
  }

  create(input: NewJob, options: { maxWaiting?: number } = {}): Promise<{ job: JobRecord; merged: boolean }> {
    const maxWaiting = options.maxWaiting ?? 0;
    const { record, event } = createRecord(input);
    const json = JSON.stringify(record);
    // Callers get what a later read would return (no `undefined` fields).
    const job = JSON.parse(json) as JobRecord;
    const k = this.keys;
    const writeId = this.#writeId();
    // Ties within a millisecond keep this process's creation order in the indexes.
    const order = String(job.createdAt * 1000 + (this.#created++ % 1000));
    return this.#retry(async () => {
      let target = '';
      let targetSeq = 0;
      if (job.mergeKey !== null) {
        target = (await this.#redis.get(k.merge(job.mergeKey))) ?? '';
        const existing = target ? await this.get(target) : null;
        if (existing && isActive(existing)) return { job: existing, merged: true };
        targetSeq = existing?.seq ?? 0;
      }
      const mergeKey = job.mergeKey === null ? k.row(job.id) : k.merge(job.mergeKey);
      const keys = [
        k.row(job.id), k.events(job.id), k.all, k.owner(job.owner), mergeKey, k.credentials(job.id), k.events(target || job.id), k.waiting(queueKeyOf(job)),
        k.children(job.parent ?? job.id),
      ];
      // A batch never runs (its members do): it is not listed, or a worker would spend a claim on it.
      const fair = job.batch ? '' : this.#fairPrefix;
      // A create that may be refused is enqueued by the caller once it is created: a refused flood queues nothing.
      const hooked = job.mergeKey === null && maxWaiting === 0 && fair !== '' ? this.#hook : undefined;
      const lease = hooked?.lease(job) ?? null;
      const args = [
        writeId, job.id, json, JSON.stringify(event), order, job.mergeKey === null ? '' : '1', input.credentials ?? '', target, String(targetSeq), String(maxWaiting),
        job.parent === undefined ? '' : '1',
        fair, queueKeyOf(job), String(job.runAt), String(Date.now()), lease?.worker ?? '', String(lease?.expiry ?? 0),
      ];
      let outcome: 0 | 1 | 2 | 3 | 4 | undefined;
      try {
        outcome = await this.#redis.backjobCreate(keys.length, ...keys, ...args);
      } finally {
        hooked?.settled(job, lease, outcome === 4 ? 'leased' : outcome === 1 || outcome === 2 ? 'listed' : 'failed', json);
      }
      if (outcome === 0) return undefined;
      if (outcome === 3) throw overQuota(maxWaiting);
      if (outcome === 1 || outcome === 4) this.#remember(record);
      return { job, merged: false };
    });
  }

  append(batch: AppendEntry[]): Promise<AppendResult[]> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ batch, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        // Let every append of this tick join the same write.
        queueMicrotask(() => void this.#flushPending());
      }
    });
  }

  /** Commits every waiting append in one write, then any that arrived meanwhile. */
  async #flushPending(): Promise<void> {
    while (this.#pending.length) {
      const calls = this.#pending;
      this.#pending = [];
      // One entry per job, events in call order; the last runner given wins.
      const merged = new Map<string, { events: JobEventData[]; runner?: string | null }>();
      for (const call of calls) {
        for (const entry of call.batch) {
          const into = merged.get(entry.jobId) ?? { events: [] };
          into.events.push(...entry.events);
          if (entry.runner !== undefined) into.runner = entry.runner;
          merged.set(entry.jobId, into);
        }
      }
      try {
        const planned = new Map((await this.#retry(() => this.#commit(merged))).map((p) => [p.jobId, p]));
        // Events were numbered in call order, so each entry's own events are the
        // next ones of its job's committed events.
        const cursor = new Map<string, number>();
        for (const call of calls) {
          call.resolve(
            call.batch.map(({ jobId, events }) => {
              const p = planned.get(jobId)!;
              const from = cursor.get(jobId) ?? 0;
              cursor.set(jobId, from + events.length);
              const own = p.events.slice(from, from + events.length);
              if (this.#published.has(p.events)) this.#published.add(own);
              return { events: own, job: p.job };
            }),
          );
        }
      } catch (error) {
        for (const call of calls) call.reject(error);
      }
    }
    this.#flushing = false;
  }

  /**
   * A row (its JSON) read elsewhere on this connection (the queue's claim): the guess the
   * next append to the job folds from, unless this process knows a later one.
   * Safe whatever it is: a stale guess fails the append's seq check and is read again.
   */
  knowRow(json: string): void {
    const record = JSON.parse(json) as JobRecord;
    const known = this.#rows.get(record.id);
    if (!known || known.seq < record.seq) this.#remember(record);
  }

  /** Keeps `record` for the next append to the job (forgets it once the job ended). */
  #remember(record: JobRecord): void {
    this.#rows.delete(record.id);
    if (isEnded(record.status)) return;
    this.#rows.set(record.id, record);
    if (this.#rows.size > MAX_CACHED_ROWS) this.#rows.delete(this.#rows.keys().next().value!);
  }

  /** The rows of `ids`: from memory where this process wrote them last, else read. */
  async #rowsOf(ids: string[]): Promise<Array<JobRecord | null>> {
    const rows = ids.map((id) => this.#rows.get(id) ?? null);
    const missing = ids.filter((_, i) => !rows[i]);
    if (missing.length) {
      const read = await this.#redis.mget(...missing.map((id) => this.keys.row(id)));
      let next = 0;
      ids.forEach((_, i) => {
        if (rows[i]) return;
        const raw = read[next++];
        rows[i] = raw ? (JSON.parse(raw) as JobRecord) : null;
      });
    }
    return rows;
  }

  /** Folds the rows and writes if no job moved on meanwhile (else forgets them and returns `undefined`). */
  async #commit(merged: Map<string, { events: JobEventData[]; runner?: string | null }>): Promise<PlannedJob[] | undefined> {
    const ids = [...merged.keys()];
    const k = this.keys;
    const rows = await this.#rowsOf(ids);
    const now = Date.now();
    const keys: string[] = [];
    const args: string[] = [this.#writeId(), this.#announce?.channel ?? '', this.#announce?.origin ?? '', this.#announce?.own ?? ''];
    const planned: PlannedJob[] = [];
    const folded: JobRecord[] = [];
    ids.forEach((jobId, i) => {
      const before = rows[i];
      if (!before) return planned.push({ jobId, events: [], job: null });
      const { events: data, runner } = merged.get(jobId)!;
      const { record, stored } = appendToRecord(before, data, runner, now);
      if (stored.length === 0) return planned.push({ jobId, events: [], job: structuredClone(record) });
      folded.push(record);
      // Callers get what a later read would return (no `undefined` fields).
      const json = JSON.stringify(record);
      const entries = stored.map((event) => JSON.stringify(event));
      const events = entries.map((entry) => JSON.parse(entry) as JobEvent);
      planned.push({ jobId, events, job: JSON.parse(json) as JobRecord });
      const ended = isEnded(record.status);
      const freesMerge = ended && record.mergeKey !== null;
      const stopsWaiting = before.status === 'waiting' && record.status !== 'waiting';
      keys.push(k.row(jobId), k.events(jobId));
      if (ended) keys.push(k.ended(record.status === 'completed'), k.credentials(jobId));
      if (freesMerge) keys.push(k.merge(record.mergeKey!));
      if (stopsWaiting) keys.push(k.waiting(queueKeyOf(record)));
      args.push(jobId, String(before.seq), String(entries.length), json, ended ? String(record.endedAt ?? now) : '', freesMerge ? '1' : '', stopsWaiting ? '1' : '');
      stored.forEach((event, e) => args.push(`${event.seq}-0`, entries[e]!));
    });
    if (keys.length === 0) return planned;
    const outcome = await this.#redis.backjobAppend(keys.length, ...keys, ...args);
    if (outcome === 0) {
      // Some job moved on in another process: read them all again.
      for (const id of ids) this.#rows.delete(id);
      return undefined;
    }
    for (const record of folded) this.#remember(record);
    if (this.#announce) for (const { events } of planned) this.#published.add(events);
    return planned;
  }

  async get(id: string): Promise<JobRecord | null> {
    const raw = await this.#redis.get(this.keys.row(id));
    return raw ? (JSON.parse(raw) as JobRecord) : null;
  }

  async eventsAfter(id: string, afterSeq: number, limit: number): Promise<JobEvent[]> {
    if (limit <= 0) return [];
    const entries = (await this.#redis.xrange(this.keys.events(id), `${afterSeq + 1}-0`, '+', 'COUNT', limit)) as StreamEntry[];
    return parseEntries(entries);
  }

  async list(filter: ListFilter): Promise<JobRecord[]> {
    const limit = filter.limit ?? Infinity;
    const statuses = filter.status === undefined ? null : new Set(Array.isArray(filter.status) ? filter.status : [filter.status]);
    const { parent } = filter;
    const index = typeof parent === 'string' ? this.keys.children(parent) : filter.owner === undefined ? this.keys.all : this.keys.owner(filter.owner);
    // A parent's children are an index of their own; an owner asked for as well, or roots only, are filtered here.
    const owned = (job: JobRecord) =>
      parent === undefined || (parent === null ? job.parent === undefined : filter.owner === undefined || job.owner === filter.owner);
    const out: JobRecord[] = [];
    const page = Number.isFinite(limit) ? Math.max(limit, 100) : 1000;
    let first = 0;
    if (filter.before) {
      // The page after the cursor's job in the index's order; when it is gone, after its creation time.
      const rank = await this.#redis.zrevrank(index, filter.before.id);
      first = rank !== null ? rank + 1 : await this.#redis.zcount(index, filter.before.createdAt * 1000, '+inf');
    }
    for (let start = first; out.length < limit; start += page) {
      const ids = await this.#redis.zrevrange(index, start, start + page - 1);
      if (ids.length === 0) break;
      const rows = await this.#redis.mget(...ids.map((id) => this.keys.row(id)));
      for (const raw of rows) {
        if (!raw) continue;
        const job = JSON.parse(raw) as JobRecord;
        if ((!statuses || statuses.has(job.status)) && owned(job)) out.push(job);
        if (out.length === limit) break;
      }
      if (ids.length < page) break;
    }
    return out;
  }

  async takeCredentials(id: string): Promise<string | null> {
    return this.#redis.getdel(this.keys.credentials(id));
  }

  deleteEnded(opts: { completedBefore?: number; endedBefore?: number }): Promise<number> {
    return deleteEndedFamilies(this.#redis, this.keys, opts);
  }

  async secret(): Promise<string> {
    const replies = (await this.#redis
      .pipeline()
      .set(this.keys.secret, randomBytes(32).toString('base64url'), 'NX')
      .get(this.keys.secret)
      .exec())!;
    return replies[1]![1] as string;
  }

  /** Claims `key` for `ttlMs` across every process: true for the first caller only. */
  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    return (await this.#redis.set(this.keys.claim(key), '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')) === 'OK';
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
