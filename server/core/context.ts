/**
 * The job context a handler (or a dispatched route, as `req.backjob`) reports
 * through. It validates and shapes what it is given, then hands events to the
 * event writer (the group commit); it never talks to the store itself, and
 * knows nothing of who made it.
 */
import { BackjobError } from '../errors.js';
import { checkOptionsObject, describeValue, invalid, invalidOption, isPlainObject, positiveOption } from '../validate.js';
import type { EventSink } from './event-writer.js';
import type { FamilyRun } from './families.js';
import { takeSpec } from './job-spec.js';
import type { ChildJob, ChildOutcome, JobContext, JobEventData, JobRecord, JobSpec, SpawnOptions, StepDeclaration, StepState } from '../types.js';
import type { ResolvedOptions } from '../host.js';

/** The limits a context keeps its reports to. */
export type ContextLimits = Pick<ResolvedOptions, 'maxLogLines' | 'maxLineLength'>;

/** Steps one job may declare, and the length of a step's name or title. */
const MAX_STEPS = 100;
const MAX_STEP_NAME = 200;
const STEP_STATES: readonly StepState[] = ['waiting', 'running', 'completed', 'failed', 'skipped'];

/**
 * What the contexts of one job in this process share, so that together they
 * keep to one bound and one view: its log lines so far, its declared steps,
 * its children.
 */
export interface JobShared {
  lines: number;
  steps: Set<string> | null;
  family: FamilyRun | null;
}

function checkLabel(name: string, value: unknown): string {
  if (!(typeof value === 'string' && value.trim().length > 0 && value.length <= MAX_STEP_NAME)) {
    throw invalidOption(name, `a non-empty string of at most ${MAX_STEP_NAME} characters`, value);
  }
  return value;
}

function checkStep(item: unknown): StepDeclaration {
  if (typeof item === 'string') return { name: checkLabel('step name', item) };
  if (!isPlainObject(item)) throw invalidOption('step', 'a name or { name, title?, weight? }', item);
  checkOptionsObject(item, ['name', 'title', 'weight'], 'step');
  const step: StepDeclaration = { name: checkLabel('step name', item.name) };
  if (item.title !== undefined) step.title = checkLabel('step title', item.title);
  if (item.weight !== undefined) step.weight = positiveOption('step weight', item.weight);
  return step;
}

function checkProgress(value: unknown): number | null {
  if (value === null) return null;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalid(`Expected progress to be a number from 0 to 100 or null, got ${describeValue(value)}`);
  }
  return Math.min(100, Math.max(0, value));
}

/**
 * Cuts `line` to at most `max` characters, ending in a marker that says how
 * much went missing, so a reader knows the line is not whole. `length` is the
 * length of the whole line when `line` is only its start (a streamed line
 * whose tail was never kept).
 */
export function cutLine(line: string, max: number, length = line.length): string {
  if (length <= max) return line;
  const marker = (dropped: number) => ` … [cut ${dropped} characters]`;
  let keep = max - marker(length).length;
  // Never split a surrogate pair: half an emoji is not a character.
  const code = line.charCodeAt(keep - 1);
  if (code >= 0xd800 && code <= 0xdbff) keep--;
  return line.slice(0, keep) + marker(length - keep);
}

/** The {@link JobContext} of one job, for one runner or one dispatched request. */
export class JobContextImpl implements JobContext {
  readonly id: string;
  readonly params: unknown;
  readonly signal: AbortSignal;
  /** Set once this context or anything else ended the job: later reports are ignored. */
  ended = false;
  /** Whether this context's own `finish`/`fail` ended the job (not a cancel, stall or timeout). */
  endedHere = false;
  /**
   * What every context of the job in this process shares (a route's
   * `req.backjob` and the runner reading its response): see {@link JobShared}.
   */
  readonly shared: JobShared;
  private progress: number | null;
  private lastWrite: Promise<unknown> = Promise.resolve();
  private ending: Promise<void> | null = null;

  constructor(
    private readonly sink: EventSink,
    private readonly limits: ContextLimits,
    job: JobRecord,
    signal: AbortSignal,
    private readonly onEnd?: () => void,
    shared?: JobShared,
  ) {
    this.id = job.id;
    // The handler's own copy: the store may keep the row it handed out as the base of the job's
    // next append (SQLite does), and a handler changing its params in place must not rewrite
    // the stored job, which a retry would then run with.
    this.params = structuredClone(job.params);
    this.signal = signal;
    this.progress = job.progress;
    this.shared = shared ?? { lines: job.logLines, steps: job.steps ? new Set(job.steps.map((step) => step.name)) : null, family: null };
  }

  update(change: number | null | { progress?: number | null; text?: string }): void {
    if (this.ended) return;
    const event: Extract<JobEventData, { type: 'job:progress' }> = { type: 'job:progress' };
    if (change === null || typeof change === 'number') {
      event.progress = checkProgress(change);
    } else if (typeof change === 'object' && !Array.isArray(change) && ('progress' in change || 'text' in change)) {
      if (change.progress !== undefined) event.progress = checkProgress(change.progress);
      if (change.text !== undefined) {
        if (typeof change.text !== 'string') throw invalid(`Expected \`text\` to be a string, got ${describeValue(change.text)}`);
        event.text = cutLine(change.text, this.limits.maxLineLength);
      }
    } else {
      throw invalid(`Expected a progress number, null, or { progress, text }, got ${describeValue(change)}`);
    }
    if (event.progress !== undefined) this.progress = event.progress;
    this.send([event]);
  }

  increment(n = 1): void {
    if (this.ended) return;
    if (typeof n !== 'number' || !Number.isFinite(n)) throw invalid(`Expected increment to be a number, got ${describeValue(n)}`);
    this.update((this.progress ?? 0) + n);
  }

  log(line: string): void {
    if (this.ended) return;
    if (typeof line !== 'string') throw invalid(`Expected a log line to be a string, got ${describeValue(line)}`);
    const { maxLogLines, maxLineLength } = this.limits;
    // Most lines hold no line break: no regex split for them.
    const lines = line.includes('\n') ? line.split(/\r?\n/) : [line];
    // "done\n" is one line, not a line and an empty one.
    if (lines.length > 1 && lines.at(-1) === '') lines.pop();
    const events: JobEventData[] = [];
    const count = this.shared;
    for (const text of lines) {
      if (count.lines > maxLogLines) break;
      count.lines++;
      events.push({
        type: 'job:log',
        line:
          count.lines > maxLogLines
            ? `[backjob: log limit of ${maxLogLines} lines reached; later lines are dropped]`
            : cutLine(text, maxLineLength),
      });
    }
    if (events.length) this.send(events);
  }

  steps(steps: Array<string | StepDeclaration>): void {
    if (this.ended) return;
    if (!Array.isArray(steps) || steps.length === 0 || steps.length > MAX_STEPS) {
      throw invalidOption('steps', `an array of 1 to ${MAX_STEPS} steps`, steps);
    }
    const declared = steps.map(checkStep);
    const names = new Set(declared.map((step) => step.name));
    if (names.size !== declared.length) throw invalid('Expected the names of `steps` to be unique');
    this.shared.steps = names;
    this.send([{ type: 'job:steps', steps: declared }]);
  }

  step(name: string, change: { progress?: number | null; text?: string; state?: StepState } = {}): void {
    if (this.ended) return;
    if (typeof name !== 'string' || !this.shared.steps?.has(name)) {
      throw invalid(`Unknown step ${describeValue(name)}: declare it with job.steps([...]) first`);
    }
    if (!isPlainObject(change)) throw invalidOption('change', '{ progress?, text?, state? }', change);
    checkOptionsObject(change, ['progress', 'text', 'state'], 'change');
    const event: Extract<JobEventData, { type: 'job:step' }> = { type: 'job:step', name };
    if (change.state !== undefined) {
      if (!STEP_STATES.includes(change.state)) throw invalidOption('state', `one of ${STEP_STATES.join(', ')}`, change.state);
      event.state = change.state;
    }
    if (change.progress !== undefined) event.progress = checkProgress(change.progress);
    if (change.text !== undefined) {
      if (typeof change.text !== 'string') throw invalid(`Expected \`text\` to be a string, got ${describeValue(change.text)}`);
      event.text = cutLine(change.text, this.limits.maxLineLength);
    }
    this.send([event]);
  }

  spawn(name: string, params?: unknown, options?: SpawnOptions): Promise<ChildJob>;
  spawn(spec: JobSpec, options?: SpawnOptions): Promise<ChildJob>;
  async spawn(job: string | JobSpec, paramsOrOptions?: unknown, maybeOptions?: SpawnOptions): Promise<ChildJob> {
    const family = this.family();
    if (this.ended) throw new BackjobError('BACKJOB_ERR_ENDED', `Job ${this.id} already ended: no new children`);
    const spec: JobSpec = typeof job === 'string' ? { name: job, params: paramsOrOptions } : job;
    const options = (typeof job === 'string' ? maybeOptions : (paramsOrOptions as SpawnOptions | undefined)) ?? {};
    if (!isPlainObject(spec)) throw invalidOption('spawn', 'a job name or a job spec', job);
    checkOptionsObject(options, ['weight', 'title', 'optional'], 'spawn options');
    if (options.weight !== undefined) positiveOption('weight', options.weight);
    if (options.title !== undefined) checkLabel('title', options.title);
    if (options.optional !== undefined && typeof options.optional !== 'boolean') throw invalidOption('optional', 'a boolean', options.optional);
    return family.spawn(takeSpec(spec), options);
  }

  children(): ChildJob[] {
    return this.shared.family?.children() ?? [];
  }

  waitForChildren(): Promise<ChildOutcome[]> {
    return this.shared.family?.waitForChildren() ?? Promise.resolve([]);
  }

  /**
   * The end of a handler that returned `result`: once its children ended,
   * completes, or fails if one of them failed that the handler did not take
   * care of (`optional`, `result()`, `waitForChildren()`).
   */
  async complete(result: unknown): Promise<void> {
    const failure = this.ended ? null : await this.shared.family?.settle();
    if (failure) return this.fail(failure);
    return this.finish(result);
  }

  private family(): FamilyRun {
    if (!this.shared.family) throw new BackjobError('BACKJOB_ERR_INVALID', 'This job context cannot spawn children');
    return this.shared.family;
  }

  finish(result?: unknown): Promise<void> {
    if (this.ended) return this.ending ?? Promise.resolve();
    let json: string | undefined;
    try {
      json = JSON.stringify(result);
    } catch (error) {
      // Thrown, not rejected, like `update`: a caller that does not await still fails loudly at the call.
      throw invalid(`Expected the job's result to be JSON-serializable (${(error as Error).message})`);
    }
    // The result as it is now, as it will be stored: the commit comes a turn later, and a handler
    // that goes on changing the object it returned must not change what the job ended with.
    return this.endWith({ type: 'job:completed', ...(json === undefined ? {} : { result: JSON.parse(json) }) });
  }

  fail(reason: string | Error): Promise<void> {
    if (this.ended) return this.ending ?? Promise.resolve();
    const message = reason instanceof Error ? reason.message || reason.name : String(reason);
    const code = reason instanceof Error ? (reason as Error & { code?: unknown }).code : undefined;
    return this.endWith({ type: 'job:failed', reason: message, ...(typeof code === 'string' && code ? { code } : {}) });
  }

  async flush(): Promise<void> {
    await (this.ending ?? this.lastWrite);
  }

  /** The job ended elsewhere (cancel, stall, timeout, another context): ignore what comes next. */
  markEnded(): void {
    this.ended = true;
  }

  private send(events: JobEventData[]): void {
    const write = this.sink.write(this.id, events);
    // Reports of one tick share the batch's promise: one handler for it, not one per line.
    if (write === this.lastWrite) return;
    // Failures reach the shim's `error` event once per batch; `flush()` still rejects.
    write.catch(() => {});
    this.lastWrite = write;
  }

  private endWith(event: Extract<JobEventData, { type: 'job:completed' | 'job:failed' }>): Promise<void> {
    this.ended = true;
    this.endedHere = true;
    this.ending = this.sink.end(this.id, event).then(() => {
      this.onEnd?.();
    });
    // A failed write reaches the shim's `error` event; a caller that did not await must not crash the app with it.
    this.ending.catch(() => {});
    return this.ending;
  }
}
