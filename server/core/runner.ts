/**
 * Runs jobs in this process: the queue's processor. A run starts the job
 * (writes `job:start`), calls its handler (or the route door), and keeps its
 * timers: `timeout`, and the stall timer that any event of the job, from any
 * process, refreshes. It hears of ends downstream (the writer's listeners,
 * the bus), aborts the handler's signal when the end came from elsewhere, and
 * at shutdown interrupts what is still running.
 */
import { isEndEvent, isEnded, type EndEventData } from '../../shared/protocol.js';
import { BackjobError, type BackjobErrorCode } from '../errors.js';
import { backoff } from './backoff.js';
import type { JobContextImpl } from './context.js';
import type { Contexts } from './contexts.js';
import type { Definitions } from './definitions.js';
import type { Families } from './families.js';
import type { ReportError } from './emitter.js';
import type { EventSink, WriteListener } from './event-writer.js';
import { settlesWithin } from './settle.js';
import { WORKER_LOST } from './records.js';
import type { AppendResult, BusNotice, Handover, JobEvent, JobQueue, JobRecord, JobStore, RunOutcome } from '../types.js';
import type { RouteDoor } from '../host.js';

/** How long `close()` lets handlers react to their aborted signal before recording them as interrupted. */
const SHUTDOWN_GRACE_MS = 3_000;

/** A job this process is running right now. */
interface Run {
  job: JobRecord;
  controller: AbortController;
  context: JobContextImpl;
  /** Resolves when the job's end is durable (`done`), or the run was left for a retry at shutdown (`later`). */
  ended: Promise<RunOutcome>;
  resolve(outcome: RunOutcome): void;
  timers: NodeJS.Timeout[];
  stall: NodeJS.Timeout | null;
}

export interface RunnerDeps {
  store: JobStore;
  queue: JobQueue;
  writer: EventSink;
  definitions: Definitions;
  contexts: Contexts;
  families: Pick<Families, 'mayRun'>;
  routes: Pick<RouteDoor, 'run'>;
  /** This shim's `JobRecord.runner` (see runner-id.ts). */
  runnerId: string;
  reportError: ReportError;
}

const interrupted = (reason: string): EndEventData => ({ type: 'job:failed', reason, code: 'BACKJOB_ERR_INTERRUPTED' });

export class Runner implements WriteListener {
  private readonly runs = new Map<string, Run>();
  private closing = false;

  constructor(private readonly deps: RunnerDeps) {}

  /** The queue's processor: runs one job to its end. Resolves once the end is durable (see {@link RunOutcome}). */
  process = (jobId: string, handover: Handover = { lost: false }): Promise<RunOutcome> =>
    this.runJob(jobId, handover).catch((error: unknown) => {
      this.startLater(jobId, error);
      return 'done' as const; // out of the queue: startLater hands it back once the store answers
    });

  private async runJob(jobId: string, handover: Handover): Promise<RunOutcome> {
    const { store, writer, definitions, contexts } = this.deps;
    if (this.closing) return 'later';
    // Handed out again while this process still runs it (the queue saw its lease lapse): hold it until
    // the run ends, so the queue keeps the job, rather than letting it go while the work goes on.
    const current = this.runs.get(jobId);
    if (current) return current.ended;
    const job = handover.job !== undefined ? handover.job : await store.get(jobId);
    if (!job || isEnded(job.status)) return 'done';
    // A batch never runs (its members do), nor a child whose parent ended.
    if ((job.batch || job.parent !== undefined) && !(await this.deps.families.mayRun(job))) return 'done';
    // Running already: its process died (recovery, or a queue that noticed a lost worker).
    if (job.status === 'running' && job.retriesLeft <= 0) {
      await writer.end(jobId, handover.lost ? { type: 'job:failed', reason: 'worker lost', code: WORKER_LOST } : interrupted('interrupted'));
      return 'done';
    }
    const definition = job.kind === 'handler' ? await definitions.awaitDefinition(job.name) : undefined;
    if (this.closing) return 'later'; // closed while waiting for the definition: the job is untouched
    if (job.kind === 'handler' && !definition) {
      await writer.end(jobId, {
        type: 'job:failed',
        reason: `Unknown job "${job.name}": no handler is defined for it in this process`,
        code: 'BACKJOB_ERR_UNKNOWN_JOB',
      });
      return 'done';
    }

    const controller = new AbortController();
    let resolve!: (outcome: RunOutcome) => void;
    const ended = new Promise<RunOutcome>((res) => (resolve = res));
    const run: Run = { job, controller, context: contexts.open(job, controller.signal), ended, resolve, timers: [], stall: null };
    // Registered before the start is written, so an end that races the start still finds the run.
    this.runs.set(jobId, run);
    let started: AppendResult | undefined;
    try {
      started = (await writer.write(jobId, [{ type: 'job:start', attempt: job.attempt + 1 }], this.deps.runnerId)).get(jobId);
    } catch (error) {
      // Not started: release the run, so the job (still waiting in the store) is not held here forever.
      this.forgetRun(run);
      throw error;
    }
    if (!started?.job || started.events.length === 0) {
      // Ended before it could start (canceled meanwhile).
      this.forgetRun(run);
      return 'done';
    }
    if (!this.runs.has(jobId)) return 'done'; // ended in the same batch as its start
    const startedJob = (run.job = started.job);
    this.startTimers(run);

    const context = run.context;
    Promise.resolve()
      .then(() => {
        // Shut down while the start was being written: never begin the work at all.
        if (run.controller.signal.aborted) throw run.controller.signal.reason;
      })
      .then(() => (definition ? definition.handler(context, context.params) : this.deps.routes.run(startedJob, context)))
      .then((value) => context.complete(value))
      .catch((error: unknown) => this.handlerFailed(run, error))
      .catch((error: unknown) => this.deps.reportError(error));
    return run.ended;
  }

  private startTimers(run: Run): void {
    const { timeoutMs, errorTimeout } = run.job;
    if (timeoutMs > 0) {
      const seconds = timeoutMs / 1000;
      run.timers.push(setTimeout(() => this.stop(run, 'BACKJOB_ERR_TIMEOUT', `timed out after ${seconds} s`), timeoutMs));
    }
    if (errorTimeout > 0) {
      run.stall = setTimeout(() => this.stop(run, 'BACKJOB_ERR_STALLED', `stalled: no progress for ${errorTimeout} s`), errorTimeout * 1000);
      run.timers.push(run.stall);
    }
    for (const timer of run.timers) timer.unref();
  }

  /**
   * A job whose start could not be read or written (the store failing) is
   * still waiting in the store, and no longer in the queue: it is handed to the
   * queue again after a backoff, each failure reported through `error`, rather
   * than left until the next start-up.
   */
  private startLater(jobId: string, error: unknown, next = backoff()): void {
    this.deps.reportError(error);
    if (this.closing) return; // the next start-up picks it up
    setTimeout(() => {
      if (this.closing) return;
      this.deps.store
        .get(jobId)
        .then((job) => (job && !isEnded(job.status) ? this.deps.queue.enqueue(job) : undefined))
        .catch((again: unknown) => this.startLater(jobId, again, next));
    }, next()).unref();
  }

  private async handlerFailed(run: Run, error: unknown): Promise<void> {
    if (run.context.ended) return;
    if (this.closing && run.controller.signal.aborted) return this.interrupt(run);
    await run.context.fail(error instanceof Error ? error : new Error(String(error)));
  }

  /** Ends a run from outside its handler (stall, timeout): record the failure, then abort the handler. */
  private stop(run: Run, code: 'BACKJOB_ERR_STALLED' | 'BACKJOB_ERR_TIMEOUT', reason: string): void {
    if (run.context.ended) return;
    this.deps.writer.end(run.job.id, { type: 'job:failed', reason, code }).catch((error) => this.deps.reportError(error));
    run.controller.abort(new BackjobError(code, reason));
  }

  /** The writer stored events of a job (a listener of the event writer). */
  stored({ job, events }: { job: JobRecord; events: JobEvent[] }): void {
    if (isEnded(job.status)) this.jobEnded(job, events.at(-1)!);
    else this.runs.get(job.id)?.stall?.refresh();
  }

  /** A notice of the bus: events of a job, perhaps written by another process. */
  onBus(message: BusNotice): void {
    // After a resync the bus catches up the jobs running here by itself: their events go through it.
    if (message.type !== 'events') return;
    const run = this.runs.get(message.jobId);
    // Any event, from any process, proves the job is alive.
    if (run?.stall) run.stall.refresh();
    const last = message.events.at(-1);
    // An end written by another process (a cancel there, a dispatched route's context).
    if (isEndEvent(last) && (run || this.deps.contexts.has(message.jobId))) {
      this.deps.store
        .get(message.jobId)
        .then((job) => job && isEnded(job.status) && this.jobEnded(job, last))
        .catch((error) => this.deps.reportError(error));
    }
  }

  /** A job ended (durably), however it happened: silence its contexts and release its run. */
  private jobEnded(job: JobRecord, event: JobEvent): void {
    this.deps.contexts.ended(job.id);
    const run = this.runs.get(job.id);
    if (!run) return;
    // The handler may still be working: tell it, unless it ended the job itself.
    if (!run.controller.signal.aborted && !run.context.endedHere && event.type !== 'job:completed') {
      const code = event.type === 'job:canceled' ? 'BACKJOB_ERR_CANCELED' : event.type === 'job:failed' && event.code ? event.code : 'BACKJOB_ERR_ENDED';
      const reason = event.type === 'job:canceled' || event.type === 'job:failed' ? event.reason : job.status;
      run.controller.abort(new BackjobError(code as BackjobErrorCode, reason));
    }
    this.forgetRun(run);
  }

  private forgetRun(run: Run, outcome: RunOutcome = 'done'): void {
    for (const timer of run.timers) clearTimeout(timer);
    if (this.runs.get(run.job.id) === run) this.runs.delete(run.job.id);
    this.deps.contexts.forget(run.context);
    run.resolve(outcome);
  }

  /** A run cut short by shutdown: left for the next start-up if it may retry, else failed now. */
  private async interrupt(run: Run): Promise<void> {
    if (run.context.ended) return;
    if (run.job.retriesLeft > 0) {
      run.context.markEnded();
      this.forgetRun(run, 'later');
      return;
    }
    await this.deps.writer.end(run.job.id, interrupted('interrupted: shutdown'));
  }

  /** Takes no more runs (the shim is closing). */
  refuse(): void {
    this.closing = true;
  }

  /** Aborts every running job's signal ("shutdown"), and gives handlers a grace to end. */
  async stopRuns(): Promise<void> {
    this.refuse();
    const runs = [...this.runs.values()];
    const reason = new BackjobError('BACKJOB_ERR_SHUTDOWN', 'shutdown');
    for (const run of runs) run.controller.abort(reason);
    await settlesWithin(Promise.all(runs.map((run) => run.ended)), SHUTDOWN_GRACE_MS);
  }

  /** Records what is still running after the grace as interrupted (or leaves it for a retry). */
  async interruptAll(): Promise<void> {
    await Promise.all([...this.runs.values()].map((run) => this.interrupt(run)));
  }
}
