/**
 * `start([...specs])`: a batch, one job whose members are its children. The
 * batch does no work itself: it is created running (no queue turn, no
 * concurrency slot), its members are ordinary queued jobs (the quota counts
 * them, concurrency limits them), and it ends when its last member ends (see
 * `Families`). Every member is checked before anything is created, so a bad
 * spec creates nothing.
 */
import { nanoid } from 'nanoid';
import { BackjobError, isBackjobError } from '../errors.js';
import { checkOptionsObject, invalid, invalidOption, isPlainObject, positiveOption } from '../validate.js';
import { childSnapshot, MAX_CHILDREN } from './families.js';
import type { EventSink } from './event-writer.js';
import { buildJob, starterOf, type JobSpecDeps } from './job-spec.js';
import { overQuota } from './records.js';
import type { BatchMemberSpec, BatchStartOptions, JobQueue, JobRecord, JobStore, NewJob } from '../types.js';

export interface BatchDeps {
  specDeps: JobSpecDeps;
  store: JobStore;
  queue: JobQueue;
  writer: EventSink;
  cancel(id: string, reason: string): Promise<boolean>;
}

/** Members created at once (each create is atomic against the quota on its own). */
const CREATE_CHUNK = 50;

function checkTitle(title: unknown): string {
  if (!(typeof title === 'string' && title.trim().length > 0 && title.length <= 200)) {
    throw invalidOption('title', 'a non-empty string of at most 200 characters', title);
  }
  return title;
}

/** Starts a batch; resolves with its id once every member is created and queued. */
export async function startBatch(deps: BatchDeps, specs: BatchMemberSpec[], options: BatchStartOptions = {}): Promise<string> {
  const { store, queue, writer } = deps;
  if (!Array.isArray(specs) || specs.length === 0 || specs.length > MAX_CHILDREN) {
    throw invalidOption('batch', `an array of 1 to ${MAX_CHILDREN} job specs`, specs);
  }
  checkOptionsObject(options, ['as', 'delay', 'merge', 'quota', 'title']);
  const { title, ...startOptions } = options;
  if (title !== undefined) checkTitle(title);
  const starter = await starterOf(deps.specDeps, startOptions);
  // The quota counts members: a batch that could never fit is refused before anything is created.
  if (starter.maxWaiting > 0 && specs.length > starter.maxWaiting) throw overQuota(starter.maxWaiting);

  const batchId = nanoid();
  const members: NewJob[] = [];
  for (const [index, spec] of specs.entries()) {
    if (!isPlainObject(spec)) throw invalidOption(`batch[${index}]`, 'a job spec (batches do not nest)', spec);
    if ('batch' in spec) throw invalid(`Expected \`batch[${index}]\` to be a job spec: batches do not nest`);
    const { weight, title: memberTitle, ...jobSpec } = spec;
    const { job } = await buildJob(deps.specDeps, jobSpec as BatchMemberSpec, { ...startOptions, merge: false }, starter);
    const member: NewJob = { ...job, parent: batchId, root: batchId, spawn: index };
    if (weight !== undefined) member.weight = positiveOption(`batch[${index}].weight`, weight);
    if (memberTitle !== undefined) member.title = checkTitle(memberTitle);
    members.push(member);
  }

  const now = Date.now();
  const batch: NewJob = {
    id: batchId,
    name: 'batch',
    ...(title === undefined ? {} : { title }),
    kind: 'handler',
    owner: starter.owner,
    queueKey: starter.queueKey,
    mergeKey: null,
    runAt: now,
    retriesLeft: 0,
    timeoutMs: 0,
    errorTimeout: 0,
    runner: null,
    createdAt: now,
    batch: true,
    members: members.length,
  };
  await store.create(batch);
  // Running from the start, with no runner: it holds no slot, and its members are its work.
  await writer.write(batchId, [{ type: 'job:start', attempt: 1 }], null);

  const created: JobRecord[] = [];
  try {
    for (let i = 0; i < members.length; i += CREATE_CHUNK) {
      const chunk = members.slice(i, i + CREATE_CHUNK);
      const settled = await Promise.allSettled(chunk.map((member) => store.create(member, { maxWaiting: starter.maxWaiting })));
      for (const outcome of settled) if (outcome.status === 'fulfilled') created.push(outcome.value.job);
      const refused = settled.find((outcome) => outcome.status === 'rejected');
      if (refused) throw refused.reason;
    }
  } catch (error) {
    // Over the quota (or the store failing) part-way: nothing of the batch runs.
    const reason = isBackjobError(error) && error.code === 'BACKJOB_ERR_QUOTA' ? 'refused: too many jobs waiting' : 'refused: its members could not be created';
    await Promise.all(created.map((member) => deps.cancel(member.id, reason)));
    await writer.end(batchId, { type: 'job:canceled', reason });
    throw error instanceof Error ? error : new BackjobError('BACKJOB_ERR_INTERNAL', String(error));
  }
  await writer.write(batchId, created.map((member) => ({ type: 'job:child', child: childSnapshot(member) })));
  for (const member of created) await queue.enqueue(member);
  return batchId;
}
