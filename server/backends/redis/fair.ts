/**
 * The fair pick in front of BullMQ: which job a worker runs next, round-robin
 * across queue keys (`JobRecord.queueKey`), shared by every process on one
 * Redis. BullMQ open source has no groups, so BullMQ carries *turns* instead
 * of jobs: every enqueued job adds one BullMQ job (its "turn", with the job's
 * id and delay), and a worker that is handed a turn asks this pick which job
 * to run with it. BullMQ's locks, stalled detection, delays and concurrency
 * then apply to turns exactly as they did to jobs.
 *
 * In Redis, under `<prefix>:fair:`:
 *
 * - `q:<queueKey>` (sorted set): the key's due job ids, first in, first out;
 * - `round:this`, `round:next` (lists) and `served` (set): the keys with due
 *   jobs, in rounds. A pick pops the head key of this round, takes its first
 *   job, marks the key served, and pushes it onto the next round if it has
 *   more; when this round is empty, the next one begins. A key that becomes
 *   due joins this round, unless it was served in it already (no second turn
 *   for emptying and refilling one's queue). As in `LocalQueue`;
 * - `delayed` (sorted set by run time): jobs not yet due. A pick first moves
 *   the due ones (and its own turn's job, whatever the clocks say) into their keys;
 * - `keyOf` (hash): job id → queue key, from enqueue until the run that took
 *   it is over. It makes `enqueue` idempotent (recovery re-enqueues freely);
 * - `picks` (hash): turn → the job it took, until that run is over, so a turn
 *   BullMQ hands out again after a stall resumes the same job rather than
 *   taking another.
 *
 * Why it stays whole: there are always at least as many unused turns as
 * listed jobs (each enqueue adds a turn, also when the job was listed
 * already, and each pick uses one turn and takes at most one job), so no job
 * is left without a worker to take it. A turn whose job was canceled, or
 * already taken by another turn, just takes the next fair job, or nothing.
 * Turns are never removed (a cancel only unlists the job), so that count
 * never falls short; a turn lost in a crash between listing a job and adding
 * its turn is made up when a worker starts (it re-enqueues every waiting job).
 * Each script is one atomic step, so workers in many processes pick without
 * racing. Turns have BullMQ's own ids, so a turn is never reused and `picks`
 * never points a new turn at an old job.
 *
 * The scripts build `q:<queueKey>` names from the prefix, so they need one
 * Redis, not a cluster (as the rest of the backend does).
 */
import type { Redis } from 'ioredis';
import { luaScript } from './lua.js';

/** The pick's scripts (see `lua/fair-*.lua`): each one atomic step. */
const ENQUEUE_LUA = luaScript('fair-enqueue', 'fair-list');
const PICK_LUA = luaScript('fair-pick', 'fair-list');
const FINISH_LUA = luaScript('fair-finish');
const REMOVE_LUA = luaScript('fair-remove');

type FairClient = Redis & {
  backjobFairEnqueue(numKeys: number, ...keysThenArgs: string[]): Promise<0 | 1>;
  backjobFairPick(numKeys: number, ...args: string[]): Promise<[string, 0 | 1, string | null] | null>;
  backjobFairFinish(numKeys: number, ...args: string[]): Promise<0 | 1>;
  backjobFairRemove(numKeys: number, ...keysThenArgs: string[]): Promise<0 | 1 | 2>;
};

/** The name of a BullMQ job that is a turn (see the module doc); one named `run` is a job of an earlier version. */
export const TURN = 'turn';

/** Where the fair pick of the store under `prefix` (e.g. `backjob:`) keeps its keys. */
export function fairPrefix(prefix: string): string {
  return `${prefix}fair:`;
}

/** The fair pick's scripts on one connection, under one prefix. */
export class FairPick {
  readonly #redis: FairClient;
  readonly #prefix: string;
  readonly #rows: string;

  /** `prefix` ends where `fair:` begins, e.g. `backjob:`; `rows`: what the store's row keys begin with. */
  constructor(redis: Redis, prefix: string, rows: string) {
    for (const [name, lua] of [
      ['backjobFairEnqueue', ENQUEUE_LUA],
      ['backjobFairPick', PICK_LUA],
      ['backjobFairFinish', FINISH_LUA],
      ['backjobFairRemove', REMOVE_LUA],
    ] as const) {
      redis.defineCommand(name, { lua });
    }
    this.#redis = redis as FairClient;
    this.#prefix = fairPrefix(prefix);
    this.#rows = rows;
  }

  /**
   * Lists a job under its queue key (or as delayed until `runAt`). Sent at
   * once, so a command issued after it on the same connection (the job's
   * turn) runs after it.
   */
  enqueue(job: { id: string; queueKey: string; runAt: number }, keys: { bullJob: string; row: string }): Promise<0 | 1> {
    return this.#redis.backjobFairEnqueue(2, keys.bullJob, keys.row, this.#prefix, job.id, job.queueKey, String(job.runAt), String(Date.now()));
  }

  /**
   * The job `turn` runs (`own`: the job the turn was added for), or null; with
   * its row as of the pick (`row`, the store's JSON, null if it has none), so
   * the worker need not read it again.
   */
  async pick(turn: string, own: string): Promise<{ id: string; resumed: boolean; row: string | null } | null> {
    const picked = await this.#redis.backjobFairPick(0, this.#prefix, turn, own, String(Date.now()), this.#rows);
    return picked ? { id: picked[0], resumed: picked[1] === 1, row: picked[2] ?? null } : null;
  }

  /** The run of `turn` is over (whatever became of its job). */
  async finish(turn: string): Promise<void> {
    await this.#redis.backjobFairFinish(0, this.#prefix, turn);
  }

  /** Unlists a waiting job: `legacy` when it is a job of an earlier version, which its own BullMQ job runs. */
  async remove(jobId: string, bullJob: string): Promise<'removed' | 'legacy' | 'taken'> {
    const outcome = await this.#redis.backjobFairRemove(1, bullJob, this.#prefix, jobId);
    return outcome === 1 ? 'removed' : outcome === 2 ? 'legacy' : 'taken';
  }
}
