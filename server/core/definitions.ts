/**
 * The in-process job types the app defined (`define(name, handler)`), and the
 * wait of a recovered job for a definition that has not come yet.
 */
import { isJobName } from '../../shared/protocol.js';
import { BackjobError } from '../errors.js';
import { invalidOption } from '../validate.js';
import { checkDefineOptions } from './options.js';
import type { DefineOptions, JobHandler } from '../types.js';
import type { Definition } from '../host.js';

/** How long a recovered job waits for the app to define its handler (see {@link Definitions.awaitDefinition}). */
const DEFINE_GRACE_MS = 10_000;

export class Definitions {
  private readonly definitions = new Map<string, Definition>();
  /** Runs of recovered jobs waiting for their handler's `define()`. */
  private readonly waiting = new Map<string, Set<() => void>>();
  private closed = false;

  define(name: string, handler: JobHandler, options: DefineOptions = {}): void {
    if (!isJobName(name)) throw invalidOption('name', 'a job name of 1 to 200 characters without spaces', name);
    if (typeof handler !== 'function') throw invalidOption('handler', 'a function (job, params) => result', handler);
    if (this.definitions.has(name)) throw new BackjobError('BACKJOB_ERR_INVALID', `A job named "${name}" is already defined`);
    checkDefineOptions(options);
    this.definitions.set(name, { name, handler, options: { ...options } });
    for (const wake of this.waiting.get(name) ?? []) wake();
    this.waiting.delete(name);
  }

  get(name: string): Definition | undefined {
    return this.definitions.get(name);
  }

  /**
   * A job's definition. Jobs recovered at start-up are queued as soon as the
   * store is open, which can be before the app's `define()` calls (job modules
   * loaded with a dynamic import): an unknown name gets a grace period before
   * the job fails as unknown.
   */
  async awaitDefinition(name: string): Promise<Definition | undefined> {
    if (this.definitions.has(name) || this.closed) return this.definitions.get(name);
    let wake!: () => void;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, DEFINE_GRACE_MS).unref();
      let waiters = this.waiting.get(name);
      if (!waiters) this.waiting.set(name, (waiters = new Set()));
      waiters.add(wake);
    });
    clearTimeout(timer);
    this.waiting.get(name)?.delete(wake);
    return this.definitions.get(name);
  }

  /** Jobs waiting for a late define() stop waiting (and, seeing the shim closing, leave the job as it is). */
  close(): void {
    this.closed = true;
    for (const waiters of this.waiting.values()) for (const wake of waiters) wake();
  }
}
