/**
 * Test harness for the dispatch and router suites: a real Express app on a
 * real port with BackJob embedded the way an app embeds it, and helpers that
 * wait for conditions instead of sleeping.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import { createBackJob, memory } from '../index.js';
import type { BackJobServer as BackJob } from '../backjob.js';
import type { BackJobOptions, JobEvent, JobRecord } from '../types.js';
import { waitFor } from './helpers.js';

export { waitFor };

export const TEST_KEY = 'test-key-0123456789-abcdefghijklmnop';

/** A running test app. Routes added to `app` after start-up are served (Express looks its stack up per request). */
export interface TestApp {
  app: Express;
  server: Server;
  backjob: BackJob;
  /** `http://127.0.0.1:<port>` */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts an app on port 0. `before` runs before `backjob.router()` is mounted
 * (e.g. to capture raw headers); `appRoutes` after it, like an app's own routes.
 * The `user` cookie is the app's notion of who is signed in.
 */
export async function startTestApp(
  options: Partial<BackJobOptions> & { before?: (app: Express) => void; appRoutes?: (app: Express, backjob: BackJob) => void; learnBaseUrl?: boolean } = {},
): Promise<TestApp> {
  const { before, appRoutes, learnBaseUrl, ...backjobOptions } = options;
  const app = express();
  const server = createServer(app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const backjob = createBackJob({
    backend: memory(),
    key: TEST_KEY,
    identify: (req) => /(?:^|;\s*)user=([^;]+)/.exec(req.headers.cookie ?? '')?.[1] ?? null,
    ...(learnBaseUrl ? {} : { baseUrl: url }),
    ...backjobOptions,
  });
  await backjob.ready;
  before?.(app);
  app.use(backjob.router());
  app.use(express.urlencoded({ extended: false }));
  app.use(express.json());
  appRoutes?.(app, backjob);
  return {
    app,
    server,
    backjob,
    url,
    async close() {
      await backjob.close();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** The job once it ended. */
export function ended(backjob: BackJob, id: string): Promise<JobRecord> {
  return waitFor(async () => {
    const job = await backjob.status(id);
    return job && ['completed', 'failed', 'canceled'].includes(job.status) ? job : null;
  }, `job ${id} to end`);
}

/** Every event of a job, in order. */
export function eventsOf(backjob: BackJob, id: string): Promise<JobEvent[]> {
  return backjob.host.backend.store.eventsAfter(id, 0, 100_000);
}

/** The job's log lines, in order. */
export async function logOf(backjob: BackJob, id: string): Promise<string[]> {
  return (await eventsOf(backjob, id)).flatMap((event) => (event.type === 'job:log' ? [event.line] : []));
}
