/**
 * `createBackJob`: the shim with SQLite as its default backend. The only
 * importer of the SQLite backend besides apps that choose it.
 */
import { sqlite } from './backends/local/sqlite.js';
import { BackJobServer } from './shim.js';
import type { BackJobOptions } from './types.js';

export { BackJobServer } from './shim.js';

/**
 * Creates the BackJob shim. Throws a `BackjobError` (`BACKJOB_ERR_INVALID`)
 * for an invalid option.
 *
 * @example
 * const backjob = createBackJob({ identify: (req) => req.session?.user });
 * backjob.define('reports/build', async (job, params) => { job.update(50); return { rows: 10 }; });
 * app.use(backjob.router());
 * backjob.attach(server);
 */
export function createBackJob(options: BackJobOptions = {}): BackJobServer {
  return new BackJobServer(options, () => sqlite());
}
