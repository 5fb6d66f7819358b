/**
 * Child process of dispatch-tls.test.ts: an app served over HTTPS only, with a
 * certificate for `app.test` and `localhost` (trusted through
 * NODE_EXTRA_CA_CERTS, which Node reads only at start-up — hence a child). It
 * starts route jobs the way a browser would reach it, waits for their ends and
 * prints them as JSON, one line each.
 *
 * TLS_BASE_URL unset: baseUrl is learned (an address); an as-user job, then an
 * anonymous one. TLS_BASE_URL=localhost: baseUrl is configured as
 * https://localhost:<port>; an as-user job from a browser that asked for
 * another name (www.example.com, say a CDN in front).
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createBackJob, memory } from '../index.js';

const cert = readFileSync(process.env.TLS_CERT!);
const app = express();
const server = https.createServer({ cert, key: readFileSync(process.env.TLS_KEY!) }, app);
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address() as AddressInfo;
const configured = process.env.TLS_BASE_URL === 'localhost';
const backjob = createBackJob({ backend: memory(), key: 'tls-test-key-0123456789abcdef', ...(configured ? { baseUrl: `https://localhost:${port}` } : {}) });
backjob.attach(server); // unless configured, baseUrl is learned from here: https://127.0.0.1:<port>
app.use(backjob.router());
app.get('/whoami', (req, res) => {
  res.type('text').send(`host=${req.headers.host}\nproto=${req.headers['x-forwarded-proto']}\nsecure-cookie=${req.headers.cookie}`);
});
app.post('/start', async (req, res) => {
  res.json(await backjob.start({ route: '/whoami' }, { as: req.query.anonymous ? 'anonymous' : req }));
});

/** The "browser": asks for https://<name>:<port>, resolved to loopback. */
function startFrom(name: string, query = ''): Promise<{ id: string }> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      { host: '127.0.0.1', port, path: `/start${query}`, method: 'POST', servername: name, ca: cert, rejectUnauthorized: name !== 'www.example.com', headers: { host: `${name}:${port}`, cookie: 'sid=abc' } },
      (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk) => (body += chunk)).on('end', () => resolve(JSON.parse(body)));
      },
    );
    request.on('error', reject).end();
  });
}

async function report(id: string): Promise<void> {
  for (;;) {
    const job = await backjob.status(id);
    if (job && ['completed', 'failed', 'canceled'].includes(job.status)) {
      const log = (await backjob.host.backend.store.eventsAfter(job.id, 0, 100)).flatMap((e) => (e.type === 'job:log' ? [e.line] : []));
      console.log(JSON.stringify({ status: job.status, error: job.error, log }));
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

if (configured) {
  await report((await startFrom('www.example.com')).id);
} else {
  await report((await startFrom('app.test')).id);
  await report((await startFrom('app.test', '?anonymous=1')).id);
}
await backjob.close();
server.closeAllConnections();
server.close();
