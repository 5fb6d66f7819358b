/**
 * The jobs every example app defines, as an app's own `jobs.ts` would: a
 * short report to watch to the end, and a long import to cancel.
 */
import type { BackJob } from 'backjob';

/** Milliseconds per step of the report: long enough to be watched live, short enough for a test. */
const REPORT_STEP_MS = 150;

/** Defines the launchable jobs `report` (about 1.5 s) and `import` (about a minute, for cancelling). */
export function defineJobs(backjob: BackJob): void {
  backjob.define(
    'report',
    async (job) => {
      for (let step = 1; step <= 10; step++) {
        await new Promise((resolve) => setTimeout(resolve, REPORT_STEP_MS));
        job.signal.throwIfAborted();
        job.update({ progress: step * 10, text: `Section ${step} of 10` });
        job.log(`Section ${step} written`);
      }
      return { pages: 10 };
    },
    { launchable: true },
  );
  backjob.define(
    'import',
    async (job) => {
      for (let row = 1; row <= 600; row++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        job.signal.throwIfAborted();
        job.update({ progress: row / 6, text: `Row ${row} of 600` });
      }
    },
    { launchable: true },
  );
}
