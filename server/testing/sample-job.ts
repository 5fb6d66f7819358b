/** Jobs as core would create them, for the store suites (its own module, so the family suite and the store suite share it without a cycle). */
import type { NewJob } from '../types.js';

let counter = 0;

/** A new job as core would create it; `overrides` replace any field. */
export function sampleJob(overrides: Partial<NewJob> = {}): NewJob {
  counter++;
  return {
    id: `job-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}`,
    name: 'reports/build',
    kind: 'handler',
    params: { year: 2024, tags: ['a', 'b'] },
    owner: 'alice',
    mergeKey: null,
    runAt: 0,
    retriesLeft: 0,
    timeoutMs: 0,
    errorTimeout: 0,
    runner: null,
    createdAt: Date.now(),
    ...overrides,
  };
}
