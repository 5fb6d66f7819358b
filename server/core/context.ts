/**
 * The job context a handler (or a dispatched route, as `req.backjob`) reports
 * through. It validates and shapes what it is given, then hands events to the
 * event writer (the group commit); it never talks to the store itself, and
 * knows nothing of who made it.
 */
import { describeValue, invalid } from '../validate.js';
import type { EventSink } from './event-writer.js';
import type { JobContext, JobEventData, JobRecord } from '../types.js';
import type { ResolvedOptions } from '../host.js';

/** The limits a context keeps its reports to. */
export type ContextLimits = Pick<ResolvedOptions, 'maxLogLines' | 'maxLineLength'>;

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
   * Log lines of the job so far, shared by every context of the job in this
   * process (a route's `req.backjob` and the runner reading its response), so
   * together they keep to one `maxLogLines` bound.
   */
  readonly logCount: { lines: number };
  private progress: number | null;
  private lastWrite: Promise<unknown> = Promise.resolve();
  private ending: Promise<void> | null = null;

  constructor(
    private readonly sink: EventSink,
    private readonly limits: ContextLimits,
    job: JobRecord,
    signal: AbortSignal,
    private readonly onEnd?: () => void,
    logCount?: { lines: number },
  ) {
    this.id = job.id;
    this.params = job.params;
    this.signal = signal;
    this.progress = job.progress;
    this.logCount = logCount ?? { lines: job.logLines };
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
    const count = this.logCount;
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

  finish(result?: unknown): Promise<void> {
    if (this.ended) return this.ending ?? Promise.resolve();
    try {
      JSON.stringify(result);
    } catch (error) {
      // Thrown, not rejected, like `update`: a caller that does not await still fails loudly at the call.
      throw invalid(`Expected the job's result to be JSON-serializable (${(error as Error).message})`);
    }
    return this.endWith({ type: 'job:completed', ...(result === undefined ? {} : { result }) });
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
