/**
 * `npm run demo`: the BackJob demo on http://localhost:3000 (or `PORT`).
 *
 * Environment: `PORT` (default 3000; 0 picks a free port), `BACKJOB_DB`
 * (SQLite file; default `backjob.db` in the working directory), and
 * `DEMO_STEP_MS` (how long one step of each demo job takes; default 350).
 */
import { createDemo } from './app.js';

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`Expected ${name} to be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

const port = envNumber('PORT', 3000);
const demo = await createDemo({ dbFile: process.env.BACKJOB_DB || undefined, stepMs: envNumber('DEMO_STEP_MS', 350) });

demo.server.listen(port, () => {
  const address = demo.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  console.log(`BackJob demo running at http://localhost:${actualPort}/`);
});

let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (closing) process.exit(1); // a second Ctrl-C: stop waiting
    closing = true;
    demo.close().then(
      () => process.exit(0),
      (error) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
}
