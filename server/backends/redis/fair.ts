/**
 * The fair queue of the Redis backend: which job a worker runs next,
 * round-robin across queue keys (`JobRecord.queueKey`), and who holds it,
 * shared by every process on one Redis. Workers claim jobs under leases
 * (see `backend.ts` for the loop that drives these scripts).
 *
 * In Redis, under `<prefix>:fair:`:
 *
 * - `q:<queueKey>` (sorted set): the key's due job ids, first in, first out;
 * - `round:this`, `round:next` (lists) and `served` (set): the keys with due
 *   jobs, in rounds. A claim pops the head key of this round, takes its first
 *   job, marks the key served, and pushes it onto the next round if it has
 *   more; when this round is empty, the next one begins. A key that becomes
 *   due joins this round, unless it was served in it already (no second turn
 *   for emptying and refilling one's queue). As in `LocalQueue`;
 * - `delayed` (sorted set by run time): jobs not yet due. A claim first moves
 *   the due ones into their keys, and tells a worker short of work when the
 *   next one is due, so it sets a timer rather than polling;
 * - `keyOf` (hash): job id → queue key, from enqueue until the run that took
 *   it is over. It makes `enqueue` idempotent (recovery re-enqueues freely);
 * - `holder` (hash, job → worker id) and `leases` (sorted set, job → expiry):
 *   the claimed jobs. A worker renews all its leases in one call on a timer;
 *   a lease that lapses (the worker died or hangs) is swept back into its
 *   key's queue, ahead of the rest, by whichever worker sweeps next;
 * - `lost` (hash): jobs put back that way, or handed back by a closing
 *   worker, so the next claim reports `resumed` (core's `Handover.lost`:
 *   core, the only writer of job state, retries the job or fails it as
 *   "worker lost");
 * - `wake` (a pub/sub channel, not a key): every listing publishes on it, so
 *   idle workers claim at once instead of polling.
 *
 * A job created by a worker process with a slot free is leased to it by its
 * create script directly when nothing else is due (it is the job the next
 * claim would take anyway, so fairness is the same): no wake, no claim, and
 * its row is already in that process's memory (`leaseAtOnce` in
 * `lua/fair-list.lua`, `CreateHook` in `store.ts`).
 *
 * Why leases of our own rather than BullMQ: the version before carried one
 * BullMQ job ("turn") per job only to borrow BullMQ's locks, stalled checks,
 * delays and concurrency, and a job then cost BullMQ's add, moveToActive
 * and moveToFinished, our pick and our finish: five script calls, each a
 * round trip and a socket write, plus BullMQ's own work. A claim here is the
 * pick plus the lease in one script, for every free slot at once, and it
 * carries the releases of the runs that ended since the last one: a job costs
 * at most one call of the queue's, and less when claims take several jobs or
 * the create leases the job itself.
 *
 * Each script is one atomic step, so workers in many processes claim without
 * racing; a release or renewal only touches leases the caller still holds
 * (one that lapsed may be another worker's by then). The scripts build
 * `q:<queueKey>` names from the prefix, so they need one Redis, not a cluster
 * (as the rest of the backend does).
 */
import type { Redis } from 'ioredis';
import { luaScript } from './lua.js';

/** The queue's scripts (see `lua/fair-*.lua`): each one atomic step. */
const SCRIPTS = {
  backjobFairEnqueue: luaScript('fair-enqueue', 'fair-list'),
  backjobFairClaim: luaScript('fair-claim', 'fair-list'),
  backjobFairRenew: luaScript('fair-renew'),
  backjobFairSweep: luaScript('fair-sweep', 'fair-list'),
  backjobFairRelease: luaScript('fair-release', 'fair-list'),
  backjobFairAdopt: luaScript('fair-adopt'),
  backjobFairRemove: luaScript('fair-remove'),
} as const;

type FairClient = Redis & {
  backjobFairEnqueue(numKeys: number, ...keysThenArgs: string[]): Promise<0 | 1>;
  backjobFairClaim(numKeys: number, ...args: string[]): Promise<Array<string | number | null>>;
  backjobFairRenew(numKeys: number, ...args: string[]): Promise<string[]>;
  backjobFairSweep(numKeys: number, ...args: string[]): Promise<number>;
  backjobFairRelease(numKeys: number, ...args: string[]): Promise<number>;
  backjobFairAdopt(numKeys: number, ...args: string[]): Promise<number>;
  backjobFairRemove(numKeys: number, ...keysThenArgs: string[]): Promise<0 | 1 | 2>;
};

/** A job a claim handed over: `resumed` when a worker had it before and lost it; its row as of the claim (null if none). */
export interface Claimed {
  id: string;
  resumed: boolean;
  row: string | null;
}

/** Where the fair queue of the store under `prefix` (e.g. `backjob:`) keeps its keys. */
export function fairPrefix(prefix: string): string {
  return `${prefix}fair:`;
}

/** The fair queue's scripts on one connection, under one prefix. */
export class FairPick {
  readonly #redis: FairClient;
  readonly #prefix: string;
  readonly #rows: string;

  /** `prefix` ends where `fair:` begins, e.g. `backjob:`; `rows`: what the store's row keys begin with. */
  constructor(redis: Redis, prefix: string, rows: string) {
    for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua });
    this.#redis = redis as FairClient;
    this.#prefix = fairPrefix(prefix);
    this.#rows = rows;
  }

  /** The pub/sub channel every listing publishes on (see the module doc). */
  get wakeChannel(): string {
    return `${this.#prefix}wake`;
  }

  /** Lists a job under its queue key (or as delayed until `runAt`). `keys.bullJob`: BullMQ's hash of a job with its id (an earlier version's). */
  enqueue(job: { id: string; queueKey: string; runAt: number }, keys: { bullJob: string; row: string }): Promise<0 | 1> {
    return this.#redis.backjobFairEnqueue(2, keys.bullJob, keys.row, this.#prefix, job.id, job.queueKey, String(job.runAt), String(Date.now()));
  }

  /**
   * Releases the leases of `finished` (runs over on `worker`), then claims up
   * to `count` due jobs for `worker`, each leased for `leaseMs`. `nextDue`:
   * when fewer were claimed, the run time of the earliest delayed job (null if none).
   */
  async claim(worker: string, count: number, leaseMs: number, finished: string[]): Promise<{ jobs: Claimed[]; nextDue: number | null }> {
    const reply = await this.#redis.backjobFairClaim(0, this.#prefix, worker, String(Date.now()), String(leaseMs), String(count), this.#rows, ...finished);
    const jobs: Claimed[] = [];
    for (let i = 1; i < reply.length; i += 3) jobs.push({ id: String(reply[i]), resumed: reply[i + 1] === 1, row: (reply[i + 2] as string | null) ?? null });
    return { jobs, nextDue: reply[0] === null || reply[0] === undefined ? null : Number(reply[0]) };
  }

  /** Extends `worker`'s leases of `ids` to `leaseMs` from now; returns the ids it no longer holds. */
  renew(worker: string, ids: string[], leaseMs: number): Promise<string[]> {
    return this.#redis.backjobFairRenew(0, this.#prefix, worker, String(Date.now() + leaseMs), ...ids);
  }

  /** Puts back the jobs whose lease lapsed, as lost; returns how many. */
  sweep(): Promise<number> {
    return this.#redis.backjobFairSweep(0, this.#prefix, String(Date.now()));
  }

  /** Hands `ids` back (released, due again at `runAt`, marked lost); returns how many `worker` still held. */
  release(worker: string, ids: string[], runAt: number): Promise<number> {
    return this.#redis.backjobFairRelease(0, this.#prefix, worker, String(runAt), ...ids);
  }

  /** Upgrade: leases (held by `holder`, lapsing after `leaseMs`) for the jobs turns of the earlier version had taken. */
  adopt(holder: string, leaseMs: number): Promise<number> {
    return this.#redis.backjobFairAdopt(0, this.#prefix, holder, String(Date.now() + leaseMs));
  }

  /** Unlists a waiting job: `legacy` when it is a job of an earlier version, which its own BullMQ job runs. */
  async remove(jobId: string, bullJob: string): Promise<'removed' | 'legacy' | 'taken'> {
    const outcome = await this.#redis.backjobFairRemove(1, bullJob, this.#prefix, jobId);
    return outcome === 1 ? 'removed' : outcome === 2 ? 'legacy' : 'taken';
  }
}
