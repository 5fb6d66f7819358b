/**
 * What keeps the store in order besides running jobs: recovery at start-up
 * (waiting jobs queued again, jobs a dead process left running re-run or
 * failed as interrupted), and the retention sweep of ended jobs.
 */
import type { ReportError } from './emitter.js';
import type { EventSink } from './event-writer.js';
import type { Families } from './families.js';
import type { Backend } from '../types.js';
import type { ResolvedOptions } from '../host.js';

const DAY_MS = 86_400_000;
/** Retention sweeps run this often at most, and at least hourly. */
const SWEEP_MIN_MS = 1_000;
const SWEEP_MAX_MS = 3_600_000;

/** A restart picks up what was waiting, and settles what a dead process left running. */
export async function recoverJobs(backend: Backend, writer: EventSink, families: Pick<Families, 'resume'>): Promise<void> {
  const { store, queue } = backend;
  for (const job of await store.list({ status: 'waiting' })) await queue.enqueue(job);
  for (const job of await backend.orphans()) {
    // A batch runs nowhere (it has no runner): it is not interrupted, it is told its members again.
    if (job.batch) {
      await families.resume(job);
      continue;
    }
    if (job.retriesLeft > 0) await queue.enqueue(job);
    else await writer.end(job.id, { type: 'job:failed', reason: 'interrupted', code: 'BACKJOB_ERR_INTERRUPTED' });
  }
}

/** Deletes ended jobs past `backlogDays` / `allBacklogDays`: once now, then periodically until stopped. */
export class RetentionSweep {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly backend: Backend,
    private readonly options: Pick<ResolvedOptions, 'backlogDays' | 'allBacklogDays'>,
    private readonly reportError: ReportError,
  ) {}

  async start(): Promise<void> {
    await this.sweep();
    const periods = [this.options.backlogDays, this.options.allBacklogDays].filter((d) => d > 0).map((d) => (d * DAY_MS) / 2);
    if (periods.length) {
      const every = Math.min(SWEEP_MAX_MS, Math.max(SWEEP_MIN_MS, Math.min(...periods)));
      this.timer = setInterval(() => void this.sweep(), every);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Waiting and running jobs are never touched (the store guarantees it). */
  private async sweep(): Promise<void> {
    const now = Date.now();
    const { backlogDays, allBacklogDays } = this.options;
    if (!backlogDays && !allBacklogDays) return;
    try {
      await this.backend.store.deleteEnded({
        ...(backlogDays ? { completedBefore: now - backlogDays * DAY_MS } : {}),
        ...(allBacklogDays ? { endedBefore: now - allBacklogDays * DAY_MS } : {}),
      });
    } catch (error) {
      this.reportError(error);
    }
  }
}
