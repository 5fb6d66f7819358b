/** Where the Redis backend keeps what, under one prefix: every key and channel name in one place. */
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
  /** Ids of the waiting jobs of one queue key (`JobRecord.queueKey`), for the quota. */
  waiting(queueKey: string) {
    return `${this.prefix}:waiting:${queueKey}`;
  }
  /** Every job by creation time. */
  get all() {
    return `${this.prefix}:jobs`;
  }
  /** Jobs of one owner (or of nobody) by creation time. */
  owner(owner: string | null) {
    return owner === null ? `${this.prefix}:anonymous` : `${this.prefix}:owner:${owner}`;
  }
  /** Children of one job (members of one batch) by creation time. */
  children(parent: string) {
    return `${this.prefix}:children:${parent}`;
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
