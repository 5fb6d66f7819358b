/**
 * Every live job context of this process, per job: a runner's, and a
 * dispatched route's `req.backjob`. An end from anywhere silences all of a
 * job's contexts at once; contexts of one job share its log count.
 */
import { isEnded } from '../../shared/protocol.js';
import { BackjobError } from '../errors.js';
import { describeValue } from '../validate.js';
import { JobContextImpl, type ContextLimits } from './context.js';
import type { EventSink } from './event-writer.js';
import { FamilyRun, type Families } from './families.js';
import type { JobRecord, JobStore } from '../types.js';

export class Contexts {
  private readonly byJob = new Map<string, Set<JobContextImpl>>();

  constructor(
    private readonly store: JobStore,
    private readonly sink: EventSink,
    private readonly limits: ContextLimits,
    private readonly families: Families,
  ) {}

  open(job: JobRecord, signal: AbortSignal, onEnd?: () => void): JobContextImpl {
    let set = this.byJob.get(job.id);
    if (!set) this.byJob.set(job.id, (set = new Set()));
    // Contexts of one job share its log count, so a route and its runner keep to one bound together.
    const sibling: JobContextImpl | undefined = set.values().next().value;
    const context = new JobContextImpl(this.sink, this.limits, job, signal, onEnd, sibling?.shared);
    // A child that fails unattended fails its parent through whichever context of it is live.
    context.shared.family ??= new FamilyRun(this.families, job, (error) => this.failJob(job.id, error));
    set.add(context);
    return context;
  }

  /**
   * A context for a job this process does not run itself: the one a
   * dispatched route request gets as `req.backjob`.
   */
  async forRequest(id: string, options: { signal: AbortSignal; onEnd?: () => void }): Promise<JobContextImpl> {
    const job = await this.store.get(id);
    if (!job) throw new BackjobError('BACKJOB_ERR_NOT_FOUND', `No job ${describeValue(id)}`);
    if (isEnded(job.status)) throw new BackjobError('BACKJOB_ERR_ENDED', `Job ${id} already ${job.status}`);
    const context = this.open(job, options.signal, options.onEnd);
    // An end that became durable during the read passed this context by, and it would wait for one forever
    // (holding the route's request and response): look again now that it is registered to hear of ends.
    const now = await this.store.get(id);
    if (!now || isEnded(now.status)) {
      context.markEnded();
      this.forget(context);
      throw new BackjobError('BACKJOB_ERR_ENDED', `Job ${id} already ${now?.status ?? 'ended'}`);
    }
    return context;
  }

  /**
   * Fails a job from outside its handler (a child failed that it does not take
   * care of): like a timeout, the runner then aborts the handler's signal.
   */
  private failJob(jobId: string, error: Error & { code?: string }): void {
    const live = [...(this.byJob.get(jobId) ?? [])].some((context) => !context.ended);
    if (!live) return;
    this.sink.end(jobId, { type: 'job:failed', reason: error.message, ...(error.code ? { code: error.code } : {}) }).catch(() => {});
  }

  has(jobId: string): boolean {
    return this.byJob.has(jobId);
  }

  /** An end of the job was queued: its contexts ignore what comes next. */
  silence(jobId: string): void {
    for (const context of this.byJob.get(jobId) ?? []) context.markEnded();
  }

  /** The job ended durably: silence its contexts and let them go. */
  ended(jobId: string): void {
    this.silence(jobId);
    this.byJob.delete(jobId);
  }

  forget(context: JobContextImpl): void {
    const set = this.byJob.get(context.id);
    set?.delete(context);
    if (set?.size === 0) this.byJob.delete(context.id);
  }
}
