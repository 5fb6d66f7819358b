// The installed `backjob` in an Express app of whichever major version the app installed,
// run by e2e/packages.test.ts: prints `listening on <port> with express <version>`.
import http from 'node:http';
import { createRequire } from 'node:module';
import express from 'express';
import { createBackJob, memory } from 'backjob';

const backjob = createBackJob({ backend: memory(), identify: (req) => req.headers['x-user'] ?? null });
backjob.define('echo', async (_job, params) => params, { launchable: true });
const app = express();
app.use(backjob.router());
app.use((_req, res) => res.status(404).type('text/plain').send('not found by the app'));
const server = http.createServer(app);
backjob.attach(server);
server.listen(0, '127.0.0.1', () => {
  const { version } = createRequire(import.meta.url)('express/package.json');
  console.log(`listening on ${server.address().port} with express ${version}`);
});
process.on('SIGTERM', () => backjob.close().then(() => process.exit(0)));
