/**
 * The shim's typed events (`job:*` and `error`), and the two ways the rest of
 * the server reaches the app's listeners: `emitSafely` (one listener that
 * throws cannot break the others or the shim) and `reportError` (an error the
 * shim survived).
 */
import { EventEmitter } from 'node:events';
import type { BackJobEvents } from '../types.js';

/** Hands an error the shim survived to the app (its `error` listeners, or a process warning). */
export type ReportError = (error: unknown) => void;

// A plain EventEmitter, typed by the overrides of `on`, `off` and `once` below: the published types
// then compile against any @types/node an app has (newer ones type EventEmitter<T> incompatibly).
export class BackJobEmitter extends EventEmitter {
  override on<E extends keyof BackJobEvents>(event: E, listener: (...args: BackJobEvents[E]) => void): this {
    return super.on(event as never, listener as never);
  }

  override off<E extends keyof BackJobEvents>(event: E, listener: (...args: BackJobEvents[E]) => void): this {
    return super.off(event as never, listener as never);
  }

  override once<E extends keyof BackJobEvents>(event: E, listener: (...args: BackJobEvents[E]) => void): this {
    return super.once(event as never, listener as never);
  }

  /**
   * Calls each listener on its own, so one that throws (or rejects) cannot break the others or the shim.
   * @internal
   */
  emitSafely<E extends keyof BackJobEvents>(name: E, ...args: BackJobEvents[E]): void {
    for (const listener of this.rawListeners(name as never) as Array<(...a: unknown[]) => unknown>) {
      try {
        const returned = listener.apply(this, args);
        if (returned && typeof (returned as Promise<unknown>).then === 'function') {
          (returned as Promise<unknown>).then(undefined, (error) => this.reportError(error));
        }
      } catch (error) {
        this.reportError(error);
      }
    }
  }

  /**
   * Hands an error the shim survived to `error` listeners, or to a process warning when there are none.
   * @internal
   */
  reportError(error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    const listeners = this.rawListeners('error' as never) as Array<(e: Error) => unknown>;
    if (listeners.length === 0) {
      process.emitWarning(err);
      return;
    }
    for (const listener of listeners) {
      try {
        listener.call(this, err);
      } catch {
        // An error listener that throws has nowhere left to report to.
      }
    }
  }
}
