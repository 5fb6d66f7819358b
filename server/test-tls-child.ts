/**
 * Child process of dispatch-tls.test.ts: an app served over HTTPS only, with a
 * certificate for `app.test` (trusted through NODE_EXTRA_CA_CERTS, which Node
 * reads only at start-up — hence a child). It starts an as-user route job the
 * way a browser would reach it, waits for the end and prints the job as JSON.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createBackJob, memory } from './index.js';

const cert = readFileSync(process.env.TLS_CERT!);
const app = express();
const server = https.createServer({ cert, key: readFileSync(process.env.TLS_KEY!) }, app);
const backjob = createBackJob({ backend: memory(), key: 'tls-test-key-0123456789abcdef' });
backjob.attach(server); // baseUrl is learned from here: https://127.0.0.1:<port>
app.use(backjob.router());
app.get('/whoami', (req, res) => {
  res.type('text').send(`host=${req.headers.host}\nproto=${req.headers['x-forwarded-proto']}\nsecure-cookie=${req.headers.cookie}`);
});
app.post('/start', async (req, res) => {
  res.json(await backjob.start({ route: '/whoami' }, { as: req }));
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address() as AddressInfo;

// The "browser": asks for https://app.test:<port>, resolved to loopback.
const started = await new Promise<{ id: string }>((resolve, reject) => {
  const request = https.request(
    { host: '127.0.0.1', port, path: '/start', method: 'POST', servername: 'app.test', ca: cert, headers: { host: `app.test:${port}`, cookie: 'sid=abc' } },
    (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk) => (body += chunk)).on('end', () => resolve(JSON.parse(body)));
    },
  );
  request.on('error', reject).end();
});

for (;;) {
  const job = await backjob.status(started.id);
  if (job && ['completed', 'failed', 'canceled'].includes(job.status)) {
    const log = (await backjob.backend.store.eventsAfter(job.id, 0, 100)).flatMap((e) => (e.type === 'job:log' ? [e.line] : []));
    console.log(JSON.stringify({ status: job.status, error: job.error, log }));
    break;
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
}
await backjob.close();
server.closeAllConnections();
server.close();
