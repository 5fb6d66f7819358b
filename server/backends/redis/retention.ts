/**
 * Retention on Redis: ended jobs past their cutoff go, a family as one (by
 * its root, with every descendant found through the children indexes, and
 * only once all of them ended), in chunks so a large backlog never becomes
 * one huge transaction.
 */
import type { Redis } from 'ioredis';
import { isEnded } from '../../../shared/protocol.js';
import type { JobRecord } from '../../types.js';
import type { RedisKeys } from './keys.js';

export async function deleteEndedFamilies(redis: Redis, k: RedisKeys, opts: { completedBefore?: number; endedBefore?: number }): Promise<number> {
  const ids = new Set<string>();
  if (opts.completedBefore !== undefined) {
    for (const id of await redis.zrangebyscore(k.ended(true), '-inf', `(${opts.completedBefore}`)) ids.add(id);
  }
  if (opts.endedBefore !== undefined) {
    for (const completed of [true, false]) {
      for (const id of await redis.zrangebyscore(k.ended(completed), '-inf', `(${opts.endedBefore}`)) ids.add(id);
    }
  }
  let deleted = 0;
  const all = [...ids];
  for (let i = 0; i < all.length; i += 500) {
    const chunk = all.slice(i, i + 500);
    const rows = await redis.mget(...chunk.map((id) => k.row(id)));
    const doomed: JobRecord[] = [];
    for (const raw of rows) {
      const job = raw ? (JSON.parse(raw) as JobRecord) : null;
      // A child goes with its root, never alone; a family goes only once every member ended.
      if (!job || job.root !== undefined) continue;
      const family = await familyOf(redis, k, job);
      if (family.every((member) => isEnded(member.status))) doomed.push(...family);
    }
    const multi = redis.multi();
    for (const job of doomed) {
      multi.zrem(k.owner(job.owner), job.id);
      multi.del(k.row(job.id), k.events(job.id), k.credentials(job.id), k.children(job.id));
      multi.zrem(k.all, job.id);
      multi.zrem(k.ended(true), job.id);
      multi.zrem(k.ended(false), job.id);
      deleted++;
    }
    // An id whose row is gone leaves its indexes too.
    chunk.forEach((id, j) => {
      if (rows[j]) return;
      multi.del(k.events(id), k.credentials(id), k.children(id));
      multi.zrem(k.all, id);
      multi.zrem(k.ended(true), id);
      multi.zrem(k.ended(false), id);
    });
    await multi.exec();
  }
  return deleted;
}

/** `root` and every job below it, through the children indexes. */
async function familyOf(redis: Redis, k: RedisKeys, root: JobRecord): Promise<JobRecord[]> {
  const family = [root];
  for (let level = [root.id]; level.length; ) {
    const childIds = (await Promise.all(level.map((id) => redis.zrange(k.children(id), '0', '-1')))).flat();
    if (childIds.length === 0) break;
    const rows = await redis.mget(...childIds.map((id) => k.row(id)));
    const children = rows.flatMap((raw) => (raw ? [JSON.parse(raw) as JobRecord] : []));
    family.push(...children);
    level = children.map((child) => child.id);
  }
  return family;
}
