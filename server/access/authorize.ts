/**
 * Who may watch and cancel a job: its owner's principal, or the holder of its
 * watch token. A child (or batch member) has its parent's owner, and opens to
 * the watch token of its parent and of its family's root too, so one token
 * handed to a page follows the whole family (never upwards: a child's token
 * opens no parent).
 */
import type { Access, JobRecord, JobStore } from '../types.js';
import type { Keys } from './tokens.js';

/**
 * The job, if `access` may watch and cancel it; `null` both for unknown jobs
 * and for forbidden ones, so a guessed id learns nothing.
 */
export async function authorize(store: JobStore, keys: Keys, id: string, access: Access): Promise<JobRecord | null> {
  const job = await store.get(id);
  if (!job) return null;
  if (typeof access.token === 'string') {
    const { token } = access;
    if ([id, job.parent, job.root].some((holder) => holder !== undefined && keys.tokenMatches(holder, token))) return job;
  }
  if (job.owner !== null && typeof access.principal === 'string' && access.principal === job.owner) return job;
  return null;
}
