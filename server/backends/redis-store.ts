/**
 * The job store on Redis: one JSON row per job, and the job's event log as a
 * Redis Stream whose entry ids are the seqs (`<seq>-0`), so "events after N"
 * is one `XRANGE` and resume works from any process.
 *
 * Writes are optimistic transactions (WATCH the rows, read them, number and
 * fold the new events in JS with the rules every store shares (`records.ts`,
 * over `applyEvent`), MULTI/EXEC). A Lua script would
 * save one round trip but would need a second copy of the fold in Lua; since
 * appends are group-committed (every pending append of this process goes in
 * one transaction), the extra round trip is paid per batch, not per event.
 * Conflicts only happen when two processes write the same job at once (a
 * cancel racing a worker) and are retried.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { isEnded } from '../../shared/protocol.js';
import type { AppendResult, JobEvent, JobEventData, JobRecord, JobStatus, JobStore, NewJob } from '../types.js';
import { appendToRecord, createRecord, isActive } from './records.js';

/** Redis key names under one prefix. */
export class RedisKeys {
  constructor(readonly prefix: string) {}
  row(id: string) {
    return `${this.prefix}:job:${id}`;
  }
  events(id: string) {
    return `${this.prefix}:events:${id}`;
  }
  credentials(id: string) {
    return `${this.prefix}:credentials:${id}`;
  }
  merge(key: string) {
    return `${this.prefix}:merge:${key}`;
  }
  /** Every job by creation time. */
  get all() {
    return `${this.prefix}:jobs`;
  }
  /** Jobs of one owner (or of nobody) by creation time. */
  owner(owner: string | null) {
    return owner === null ? `${this.prefix}:anonymous` : `${this.prefix}:owner:${owner}`;
  }
  /** Ended jobs by end time: completed ones apart, for the two retention periods. */
  ended(completed: boolean) {
    return `${this.prefix}:ended:${completed ? 'completed' : 'other'}`;
  }
  get secret() {
    return `${this.prefix}:secret`;
  }
  claim(key: string) {
    return `${this.prefix}:claim:${key}`;
  }
  get channel() {
    return `${this.prefix}:bus`;
  }
}

/** How long a write keeps retrying through a Redis outage before it gives up. */
const OUTAGE_GRACE_MS = 60_000;

/** The transaction failed in a way that leaves its outcome unknown (connection lost). */
class UnknownOutcome extends Error {}

interface PlannedJob {
  jobId: string;
  events: JobEvent[];
  job: JobRecord | null;
}

type StreamEntry = [id: string, fields: string[]];

function parseEntries(entries: StreamEntry[]): JobEvent[] {
  return entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('e') + 1]!) as JobEvent);
}

/**
 * A `JobStore` on Redis. `connection` serves reads; `transactions` is a
 * dedicated connection, because WATCH state belongs to a connection and two
 * interleaved transactions on one would watch each other's keys.
 */
export class RedisJobStore implements JobStore {
  readonly keys: RedisKeys;
  readonly #redis: Redis;
  readonly #tx: Redis;
  /** Appends waiting for the transaction in flight; they go together in the next one. */
  #pending: Array<{
    batch: Array<{ jobId: string; events: JobEventData[]; runner?: string | null }>;
    resolve: (results: AppendResult[]) => void;
    reject: (error: unknown) => void;
  }> = [];
  #tail: Promise<unknown> = Promise.resolve();
  #created = 0;
  #flushing = false;

  constructor(redis: Redis, transactions: Redis, prefix: string) {
    this.#redis = redis;
    this.#tx = transactions;
    this.keys = new RedisKeys(prefix);
  }

  /** Runs `fn` alone on the transaction connection (one WATCH at a time). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn, fn);
    this.#tail = run.catch(() => {});
    return run;
  }

  /**
   * Retries `attempt` on WATCH conflicts (it returns `undefined`) and on a lost
   * connection, until it succeeds or Redis has been gone too long.
   */
  async #retry<T>(attempt: (afterUnknown: boolean) => Promise<T | undefined>): Promise<T> {
    const giveUpAt = Date.now() + OUTAGE_GRACE_MS;
    let afterUnknown = false;
    for (let round = 0; ; round++) {
      try {
        const result = await attempt(afterUnknown);
        if (result !== undefined) return result;
        afterUnknown = false;
      } catch (error) {
        if (Date.now() > giveUpAt || this.#tx.status === 'end') throw error;
        if (!(error instanceof UnknownOutcome) && this.#tx.status === 'ready' && !/connection|closed/i.test(String(error))) {
          throw error;
        }
        afterUnknown = true;
        await this.#whenReady();
      }
      // Back off a little under contention so the other writer can finish.
      if (round > 2) await new Promise((r) => setTimeout(r, Math.min(50, round * 2)));
    }
  }

  async #whenReady() {
    if (this.#tx.status === 'ready') return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#tx.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, 1000);
      this.#tx.once('ready', done);
    });
  }

  /** Sends a MULTI whose WATCH must still hold: never on a fresh connection that lost it. */
  async #exec(multi: ReturnType<Redis['multi']>): Promise<Array<[Error | null, unknown]> | null> {
    if (this.#tx.status !== 'ready') throw new UnknownOutcome('Redis connection not ready');
    try {
      return (await multi.exec()) as Array<[Error | null, unknown]> | null;
    } catch (error) {
      throw new UnknownOutcome('Redis transaction outcome unknown', { cause: error });
    }
  }

  create(input: NewJob): Promise<{ job: JobRecord; merged: boolean }> {
    const { record, event: created } = createRecord(input);
    const row = JSON.stringify(record);
    // Callers get what a later read would return (no `undefined` fields).
    const job = JSON.parse(row) as JobRecord;
    const writeId = randomBytes(8).toString('hex');
    // Ties within a millisecond keep creation order (of this process) in the indexes.
    const order = job.createdAt * 1000 + (this.#created++ % 1000);
    const k = this.keys;
    return this.#exclusive(() =>
      this.#retry(async (afterUnknown) => {
        if (afterUnknown) {
          const done = await this.#redis.xrange(k.events(job.id), '1-0', '1-0');
          if (done.length && done[0]![1].includes(writeId)) return { job, merged: false };
        }
        if (job.mergeKey !== null) {
          const [[, existingId]] = (await this.#tx.pipeline().watch(k.merge(job.mergeKey)).get(k.merge(job.mergeKey)).exec())!.slice(1) as [[null, string | null]];
          if (existingId) {
            const [[, raw]] = (await this.#tx.pipeline().watch(k.row(existingId)).get(k.row(existingId)).exec())!.slice(1) as [[null, string | null]];
            const existing = raw ? (JSON.parse(raw) as JobRecord) : null;
            if (existing && isActive(existing)) {
              await this.#tx.unwatch();
              return { job: existing, merged: true };
            }
          }
        }
        const multi = this.#tx.multi();
        multi.set(k.row(job.id), row);
        multi.xadd(k.events(job.id), '1-0', 'e', JSON.stringify(created), 'w', writeId);
        multi.zadd(k.all, order, job.id);
        multi.zadd(k.owner(job.owner), order, job.id);
        if (job.mergeKey !== null) multi.set(k.merge(job.mergeKey), job.id);
        if (input.credentials !== undefined) multi.set(k.credentials(job.id), input.credentials);
        const replies = await this.#exec(multi);
        if (replies === null) return undefined;
        return { job, merged: false };
      }),
    );
  }

  append(batch: Array<{ jobId: string; events: JobEventData[]; runner?: string | null }>): Promise<AppendResult[]> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ batch, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        // Let every append of this tick join the same transaction.
        queueMicrotask(() => void this.#exclusive(() => this.#flushPending()));
      }
    });
  }

  /** Commits every waiting append in one transaction, then any that arrived meanwhile. */
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
        const planned = await this.#commitWithRetry(merged);
        // Events were numbered in call order, so each entry's own events are the
        // next ones of its job's committed events.
        const cursor = new Map<string, number>();
        for (const call of calls) {
          call.resolve(
            call.batch.map(({ jobId, events }) => {
              const p = planned.get(jobId)!;
              const from = cursor.get(jobId) ?? 0;
              cursor.set(jobId, from + events.length);
              return { events: p.events.slice(from, from + events.length), job: p.job };
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
   * Commits `merged`, retrying on conflicts and outages. After a transaction
   * whose reply was lost, the stream tells whether it was applied (each entry
   * carries the id of the write that added it), so nothing is written twice.
   */
  async #commitWithRetry(merged: Map<string, { events: JobEventData[]; runner?: string | null }>): Promise<Map<string, PlannedJob>> {
    const done = new Map<string, PlannedJob>();
    let last: { writeId: string; plan: PlannedJob[] } = { writeId: '', plan: [] };
    await this.#retry(async (afterUnknown) => {
      if (afterUnknown) {
        for (const p of last.plan) {
          if (p.events.length === 0) continue;
          const id = `${p.events[0]!.seq}-0`;
          const [entry] = (await this.#redis.xrange(this.keys.events(p.jobId), id, id)) as StreamEntry[];
          if (entry && entry[1].includes(last.writeId)) {
            done.set(p.jobId, p);
            merged.delete(p.jobId);
          }
        }
      }
      last = { writeId: randomBytes(8).toString('hex'), plan: [] };
      const committed = await this.#commit(merged, last);
      if (committed) for (const p of last.plan) done.set(p.jobId, p);
      return committed || undefined;
    });
    return done;
  }

  /** One optimistic transaction over the jobs of `merged`; false on a WATCH conflict. */
  async #commit(
    merged: Map<string, { events: JobEventData[]; runner?: string | null }>,
    attempt: { writeId: string; plan: PlannedJob[] },
  ): Promise<boolean> {
    const ids = [...merged.keys()];
    if (ids.length === 0) return true;
    const k = this.keys;
    const replies = (await this.#tx
      .pipeline()
      .watch(...ids.map((id) => k.row(id)))
      .mget(...ids.map((id) => k.row(id)))
      .exec())!;
    if (replies[0]![0] || replies[1]![0]) throw replies[0]![0] ?? replies[1]![0];
    const rows = replies[1]![1] as Array<string | null>;
    const now = Date.now();
    const multi = this.#tx.multi();
    let writes = 0;
    ids.forEach((jobId, i) => {
      const raw = rows[i];
      if (!raw) return attempt.plan.push({ jobId, events: [], job: null });
      const { events: data, runner } = merged.get(jobId)!;
      const { record, stored } = appendToRecord(JSON.parse(raw) as JobRecord, data, runner, now);
      if (stored.length === 0) return attempt.plan.push({ jobId, events: [], job: record });
      if (isEnded(record.status)) {
        if (record.mergeKey !== null) multi.del(k.merge(record.mergeKey));
        multi.zadd(k.ended(record.status === 'completed'), record.endedAt ?? now, jobId);
      }
      // Callers get what a later read would return (no `undefined` fields).
      const row = JSON.stringify(record);
      multi.set(k.row(jobId), row);
      const events = stored.map((event) => {
        const json = JSON.stringify(event);
        multi.xadd(k.events(jobId), `${event.seq}-0`, 'e', json, 'w', attempt.writeId);
        return JSON.parse(json) as JobEvent;
      });
      attempt.plan.push({ jobId, events, job: JSON.parse(row) as JobRecord });
      writes++;
    });
    if (writes === 0) {
      await this.#tx.unwatch();
      return true;
    }
    return (await this.#exec(multi)) !== null;
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

  async list(filter: { owner?: string | null; status?: JobStatus | JobStatus[]; limit?: number }): Promise<JobRecord[]> {
    const limit = filter.limit ?? Infinity;
    const statuses = filter.status === undefined ? null : new Set(Array.isArray(filter.status) ? filter.status : [filter.status]);
    const index = filter.owner === undefined ? this.keys.all : this.keys.owner(filter.owner);
    const out: JobRecord[] = [];
    const page = Number.isFinite(limit) ? Math.max(limit, 100) : 1000;
    for (let start = 0; out.length < limit; start += page) {
      const ids = await this.#redis.zrevrange(index, start, start + page - 1);
      if (ids.length === 0) break;
      const rows = await this.#redis.mget(...ids.map((id) => this.keys.row(id)));
      for (const raw of rows) {
        if (!raw) continue;
        const job = JSON.parse(raw) as JobRecord;
        if (!statuses || statuses.has(job.status)) out.push(job);
        if (out.length === limit) break;
      }
      if (ids.length < page) break;
    }
    return out;
  }

  async takeCredentials(id: string): Promise<string | null> {
    return this.#redis.getdel(this.keys.credentials(id));
  }

  async deleteEnded(opts: { completedBefore?: number; endedBefore?: number }): Promise<number> {
    const k = this.keys;
    const ids = new Set<string>();
    if (opts.completedBefore !== undefined) {
      for (const id of await this.#redis.zrangebyscore(k.ended(true), '-inf', `(${opts.completedBefore}`)) ids.add(id);
    }
    if (opts.endedBefore !== undefined) {
      for (const completed of [true, false]) {
        for (const id of await this.#redis.zrangebyscore(k.ended(completed), '-inf', `(${opts.endedBefore}`)) ids.add(id);
      }
    }
    let deleted = 0;
    const all = [...ids];
    for (let i = 0; i < all.length; i += 500) {
      const chunk = all.slice(i, i + 500);
      const rows = await this.#redis.mget(...chunk.map((id) => k.row(id)));
      const multi = this.#redis.multi();
      chunk.forEach((id, j) => {
        const raw = rows[j];
        if (raw) {
          const job = JSON.parse(raw) as JobRecord;
          multi.zrem(k.owner(job.owner), id);
          deleted++;
        }
        multi.del(k.row(id), k.events(id), k.credentials(id));
        multi.zrem(k.all, id);
        multi.zrem(k.ended(true), id);
        multi.zrem(k.ended(false), id);
      });
      await multi.exec();
    }
    return deleted;
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
    await this.#tail.catch(() => {});
  }
}
