/**
 * The one backoff of the server: what waits between attempts of a store
 * write that failed (a job's end, a job's start), doubling from 100 ms to at
 * most 5 s, so a store that is down is asked a few times a second at first
 * and then every few seconds, never in a tight loop.
 */
export const RETRY_MIN_MS = 100;
export const RETRY_MAX_MS = 5_000;

/** A fresh sequence of delays: each call returns the next one (100, 200, 400 … 5000, 5000 ms). */
export function backoff(min = RETRY_MIN_MS, max = RETRY_MAX_MS): () => number {
  let delay = min / 2;
  return () => (delay = Math.min(2 * delay, max));
}

/** Resolves after `ms`, on a timer that does not keep the process alive. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * Runs `attempt` until it succeeds, waiting a backoff between failures. A
 * failure is rethrown when `giveUp(error)` says so (the shim is closing).
 */
export async function retryWithBackoff<T>(attempt: () => Promise<T>, giveUp: (error: unknown) => boolean): Promise<T> {
  const next = backoff();
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (giveUp(error)) throw error;
      await sleep(next());
    }
  }
}
