/**
 * The demo's jobs: in-process handlers defined on the shim, and the app
 * routes that BackJob dispatches as jobs (the way the original BackJob runs
 * a controller action in the background).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Router } from 'express';
import type { BackJob } from '../server/types.js';
import { DEMO_USERS, type Sessions } from './session.js';

/** How long one step of every demo job takes, so tests can run the same jobs fast. */
export interface DemoTiming {
  stepMs: number;
}

/** Step counts: a job takes `steps × stepMs`. */
const STEPS = { quarterly: 20, broken: 6, archive: 300, digest: 12, teamReport: 10, importStage: 5, exportRows: 8, resize: 4 } as const;

/** The stages of `imports/run`, each a named step with a progress of its own. */
const IMPORT_STAGES = [
  { name: 'download', title: 'Download', doing: 'Downloaded chunk' },
  { name: 'transform', title: 'Transform', doing: 'Transformed chunk' },
  { name: 'upload', title: 'Upload', doing: 'Uploaded chunk' },
] as const;

/** The files `exports/all` writes, one child job each. */
export const EXPORT_FILES = ['customers.csv', 'orders.csv', 'invoices.csv', 'products.csv', 'refunds.csv'] as const;

const REGIONS = ['Aberdeen', 'Bergen', 'Cork', 'Dundee', 'Esbjerg', 'Faro', 'Gdańsk', 'Hull', 'Izmir', 'Jaffa'];

/** Defines the in-process demo jobs on `backjob`. */
export function defineDemoJobs(backjob: BackJob, { stepMs }: DemoTiming): void {
  backjob.define(
    'reports/quarterly',
    async (job) => {
      for (let step = 1; step <= STEPS.quarterly; step++) {
        await sleep(stepMs, undefined, { signal: job.signal });
        const region = REGIONS[(step - 1) % REGIONS.length];
        job.update({ progress: (step / STEPS.quarterly) * 100, text: `Totalling ${region} (${step} of ${STEPS.quarterly})` });
        job.log(`Step ${step}: ${region} ledger totalled`);
      }
      return { pages: 12, regions: REGIONS.length };
    },
    // Re-run after a crash: the demo shows a page recovering from a server restart mid-job.
    { launchable: true, retries: 1, title: 'Quarterly report' },
  );

  backjob.define(
    'reports/broken',
    async (job) => {
      for (let step = 1; step <= STEPS.broken; step++) {
        await sleep(stepMs, undefined, { signal: job.signal });
        job.update({ progress: (step / (STEPS.broken * 2)) * 100, text: `Reading ledger row ${step}` });
        job.log(`Row ${step} parsed`);
      }
      throw new Error(`Upstream ledger returned malformed CSV at row ${STEPS.broken + 1}`);
    },
    { launchable: true, title: 'Broken report' },
  );

  backjob.define(
    'archive/rebuild',
    async (job) => {
      for (let batch = 1; batch <= STEPS.archive; batch++) {
        await sleep(stepMs, undefined, { signal: job.signal });
        job.update({ progress: (batch / STEPS.archive) * 100, text: `Archiving batch ${batch} of ${STEPS.archive}` });
        job.log(`Batch ${batch} archived`);
      }
    },
    { launchable: true, title: 'Archive rebuild' },
  );

  // A job with steps: its progress is derived from theirs, and the page says "Step 2 of 3: Transform".
  backjob.define(
    'imports/run',
    async (job) => {
      job.steps(IMPORT_STAGES.map(({ name, title }) => ({ name, title })));
      for (const stage of IMPORT_STAGES) {
        job.step(stage.name, { progress: 0, text: `${stage.title} starting` });
        for (let chunk = 1; chunk <= STEPS.importStage; chunk++) {
          await sleep(stepMs, undefined, { signal: job.signal });
          job.step(stage.name, { progress: (chunk / STEPS.importStage) * 100, text: `${stage.title}: chunk ${chunk} of ${STEPS.importStage}` });
          job.log(`${stage.doing} ${chunk} of ${STEPS.importStage}`);
        }
        job.step(stage.name, { state: 'completed' });
      }
      return { chunks: STEPS.importStage };
    },
    { launchable: true, title: 'Nightly import' },
  );

  // One file of an export: a child job with its own log and progress.
  backjob.define(
    'exports/file',
    async (job, params: { file?: string }) => {
      const file = String(params?.file ?? 'export.csv');
      for (let row = 1; row <= STEPS.exportRows; row++) {
        await sleep(stepMs, undefined, { signal: job.signal });
        job.update({ progress: (row / STEPS.exportRows) * 100, text: `Row block ${row} of ${STEPS.exportRows}` });
        job.log(`${file}: wrote row block ${row} of ${STEPS.exportRows}`);
      }
      return { file, blocks: STEPS.exportRows };
    },
    { title: 'Export file' },
  );

  // A parent: spawns one child per file, its progress theirs, and ends once they all did.
  backjob.define(
    'exports/all',
    async (job) => {
      job.log(`Exporting ${EXPORT_FILES.length} files`);
      for (const file of EXPORT_FILES) await job.spawn('exports/file', { file }, { title: `Export ${file}` });
      const outcomes = await job.waitForChildren();
      const done = outcomes.filter((outcome) => outcome.status === 'completed').length;
      job.log(`${done} of ${EXPORT_FILES.length} files exported`);
      if (done < outcomes.length) throw new Error(`${outcomes.length - done} file(s) could not be exported`);
      return { files: done };
    },
    { launchable: true, title: 'Export everything' },
  );

  // A batch member: launchable, since the browser starts a batch of them.
  backjob.define(
    'images/resize',
    async (job, params: { image?: string }) => {
      const image = String(params?.image ?? 'image.jpg');
      for (let size = 1; size <= STEPS.resize; size++) {
        await sleep(stepMs, undefined, { signal: job.signal });
        job.update({ progress: (size / STEPS.resize) * 100, text: `Size ${size} of ${STEPS.resize}` });
        job.log(`${image}: size ${size} of ${STEPS.resize} written`);
      }
      return { image };
    },
    { launchable: true, title: 'Resize image' },
  );

  // Not launchable: only the server starts it (while rendering /rendered).
  backjob.define('digest/daily', async (job) => {
    job.update({ progress: null, text: 'Collecting headlines' });
    await sleep(stepMs * 2, undefined, { signal: job.signal });
    for (let item = 1; item <= STEPS.digest; item++) {
      await sleep(stepMs, undefined, { signal: job.signal });
      job.update({ progress: (item / STEPS.digest) * 100, text: `Summarising story ${item} of ${STEPS.digest}` });
      job.log(`Story ${item} summarised`);
    }
  }, { title: 'Daily digest' });
}

/**
 * App routes that run as background jobs: mounted like any other route, and
 * declared launchable with the shim's `routes: ['/jobs/*']` option.
 */
export function demoJobRoutes(sessions: Sessions, { stepMs }: DemoTiming): Router {
  const routes = Router();

  // An access rule like any app has: anonymous callers get a 403, which BackJob
  // reports as the job failing with "403 Forbidden".
  routes.get('/jobs/team-report', async (req, res) => {
    const user = sessions.user(req);
    if (!user) {
      res.status(403).type('text/plain').send('Sign in to build a team report.');
      return;
    }
    const job = req.backjob;
    if (!job) {
      res.status(400).type('text/plain').send('Start this route as a background job.');
      return;
    }
    const name = DEMO_USERS[user]!.name;
    res.type('text/plain');
    // Whatever the route writes streams into the job's log.
    res.write(`Building the team report for ${name} (signed in as ${user})\n`);
    for (let step = 1; step <= STEPS.teamReport; step++) {
      await sleep(stepMs, undefined, { signal: job.signal });
      job.update({ progress: (step / STEPS.teamReport) * 100, text: `Section ${step} of ${STEPS.teamReport} for ${name}` });
      res.write(`Section ${step} written for ${user}\n`);
    }
    res.end(`Report ready for ${name}\n`);
  });

  // A job started with a POST body: one line per row to import.
  routes.post('/jobs/import', async (req, res) => {
    const job = req.backjob;
    if (!job) {
      res.status(400).type('text/plain').send('Start this route as a background job.');
      return;
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const rows = String(body.rows ?? '')
      .split(/\r?\n/)
      .map((row) => row.trim())
      .filter(Boolean);
    const list = String(body.list ?? 'contacts');
    if (rows.length === 0) {
      res.status(422).type('text/plain').send('Nothing to import: add at least one row.');
      return;
    }
    res.type('text/plain');
    res.write(`Importing ${rows.length} row(s) into “${list}”\n`);
    for (const [i, row] of rows.entries()) {
      await sleep(stepMs, undefined, { signal: job.signal });
      job.update({ progress: ((i + 1) / rows.length) * 100, text: `Imported ${i + 1} of ${rows.length}` });
      res.write(`Imported: ${row}\n`);
    }
    res.end(`Done: ${rows.length} row(s) in “${list}”\n`);
  });

  return routes;
}
