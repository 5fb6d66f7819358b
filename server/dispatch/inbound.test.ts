/**
 * Recognition without Express: a plain node:http `(req, res)` handler (what
 * Fastify and other frameworks have underneath) asks `Dispatch.recognize` and
 * gets the job context of a request BackJob dispatched, or null for any
 * other, with the BackJob headers gone either way.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { JOB_HEADER, SIGNATURE_HEADER, bodyDigest, signRequest } from '../access/signing.js';
import { createBackJob, memory, type BackJobServer } from '../index.js';
import { TEST_KEY, ended, eventsOf, logOf } from '../testing/http-test-app.js';
import { waitFor } from '../testing/helpers.js';
import { Dispatch } from './dispatch.js';

let server: Server;
let backjob: BackJobServer;
let url: string;
/** What the handler saw of each request: whether it was recognised, and the headers left for the app. */
const seen: Array<{ url: string; job: string | null; headers: IncomingHttpHeaders }> = [];

before(async () => {
  server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  backjob = createBackJob({ backend: memory(), key: TEST_KEY, baseUrl: url });
  await backjob.ready;
  const dispatch = new Dispatch(backjob.host);
  server.on('request', (req, res) => {
    dispatch.recognize(req, res).then(
      async (job) => {
        seen.push({ url: req.url!, job: job?.id ?? null, headers: { ...req.headers } });
        if (job) {
          job.update({ progress: 40, text: 'halfway' });
          job.log('reported');
        }
        res.setHeader('content-type', 'text/plain');
        res.end(job ? 'written\n' : 'ordinary\n');
      },
      (error: Error & { status?: number }) => {
        res.statusCode = error.status ?? 500;
        res.end(error.message);
      },
    );
  });
});

after(async () => {
  await backjob.close();
  server.closeAllConnections();
  server.close();
});

test('a route job reaches a plain node:http handler, which reports on its job through the context it recognised', async () => {
  const { id } = await backjob.start({ route: '/plain', query: { q: '1' } });
  const job = await ended(backjob, id);
  assert.equal(job.status, 'completed', job.error);
  assert.equal(job.text, 'halfway');
  assert.ok((await eventsOf(backjob, id)).some((e) => e.type === 'job:progress' && e.progress === 40), 'the progress it reported');
  assert.deepEqual(await logOf(backjob, id), ['reported', 'written']);
  const request = seen.find((s) => s.job === id);
  assert.ok(request, 'the request was recognised as the job');
  assert.equal(request.url, '/plain?q=1');
  assert.equal(request.headers[SIGNATURE_HEADER], undefined, 'the signature is not left for the app');
  assert.equal(request.headers[JOB_HEADER], undefined);
});

test('any other request is ordinary, and BackJob headers it brought are stripped: forged, or signed for another URL', async () => {
  backjob.define('hold', (job) => new Promise((resolve) => job.signal.addEventListener('abort', resolve)));
  const { id } = await backjob.start({ name: 'hold' });
  await waitFor(async () => (await backjob.status(id))?.status === 'running', 'the job to run');
  const forUrl = (path: string) => signRequest(Buffer.from(TEST_KEY), { jobId: id, method: 'GET', url: path, bodyDigest: bodyDigest() });
  for (const [path, signature] of [['/forged', 'v1=0.nonsense'], ['/other', forUrl('/signed-for-this')]] as const) {
    const res = await fetch(`${url}${path}`, { headers: { [SIGNATURE_HEADER]: signature, [JOB_HEADER]: id } });
    assert.equal(await res.text(), 'ordinary\n', path);
    const request = seen.filter((s) => s.url === path).at(-1)!;
    assert.equal(request.job, null, path);
    assert.equal(request.headers[SIGNATURE_HEADER], undefined, path);
    assert.equal(request.headers[JOB_HEADER], undefined, path);
  }
  // Signed for this very URL: recognised once, then a replay is ordinary.
  const signature = forUrl('/replayed');
  const first = await fetch(`${url}/replayed`, { headers: { [SIGNATURE_HEADER]: signature, [JOB_HEADER]: id } });
  assert.equal(await first.text(), 'written\n');
  const replay = await fetch(`${url}/replayed`, { headers: { [SIGNATURE_HEADER]: signature, [JOB_HEADER]: id } });
  assert.equal(await replay.text(), 'ordinary\n');
  await backjob.cancel(id);
});
