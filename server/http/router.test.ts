import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import type * as express from 'express';
import WebSocket from 'ws';
import { SUBPROTOCOL, type ErrorReply, type JobSnapshot, type StartReply } from '../../shared/protocol.js';
import { createBackJob, memory } from '../index.js';
import { ended, logOf, startTestApp, waitFor, type TestApp } from '../testing/http-test-app.js';

describe('HTTP API', () => {
  let t: TestApp;
  let appErrorHandled = false;

  before(async () => {
    t = await startTestApp({
      routes: ['/reports/*'],
      appRoutes: (app, backjob) => {
          backjob.define('export', async (job, params: { rows?: number }) => {
            job.update({ progress: 50, text: `exporting ${params.rows ?? 0} rows` });
            return { ok: true };
          }, { launchable: true });
          backjob.define('wait', async (job) => {
            await new Promise((resolve) => job.signal.addEventListener('abort', resolve));
          }, { launchable: true });
          backjob.define('internal', async () => undefined);
          app.post('/reports/mine', (req, res) => {
            res.type('text').send(`cookie=${req.headers.cookie ?? 'none'}\nmonth=${req.query.month}\nformat=${req.body.format}`);
          });
          app.post('/admin/purge', (_req, res) => res.send('purged'));
          app.get('/backjob/not-ours', (_req, res) => res.send('the app answered'));
          app.get('/app/throws', () => {
            throw new Error('app failure');
          });
          app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
            appErrorHandled = true;
            res.status(500).send(`app handler: ${error.message}`);
          });
      },
    });
  });
  after(() => t.close());

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${t.url}/backjob${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${t.url}/backjob${path}`, { headers });
  const errorOf = async (res: Response) => ((await res.json()) as ErrorReply).error;

  test('POST /jobs starts a launchable job as the current user: 202 with id, token and snapshot', async () => {
    const res = await post('/jobs', { name: 'export', params: { rows: 3 } }, { cookie: 'user=alice', origin: t.url });
    assert.equal(res.status, 202);
    const reply = (await res.json()) as StartReply;
    assert.equal(typeof reply.id, 'string');
    assert.equal(reply.token, t.backjob.tokenFor(reply.id));
    assert.equal(reply.merged, false);
    assert.equal(reply.snapshot.id, reply.id);
    assert.equal(reply.snapshot.name, 'export');
    assert.ok(!('owner' in reply.snapshot) && !('params' in reply.snapshot), 'private fields stay on the server');
    const job = await ended(t.backjob, reply.id);
    assert.equal(job.owner, 'alice');
    assert.deepEqual(job.result, { ok: true });
    assert.equal(job.text, 'exporting 3 rows');
  });

  test('a launchable route runs as the user with query and body', async () => {
    const res = await post('/jobs', { route: '/reports/mine', method: 'POST', params: { month: 5 }, body: { format: 'csv' } }, { cookie: 'user=bob' });
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as StartReply;
    assert.equal((await ended(t.backjob, id)).status, 'completed');
    assert.deepEqual(await logOf(t.backjob, id), ['cookie=user=bob', 'month=5', 'format=csv']);
  });

  test('unknown names are 404, undeclared jobs and routes are 403', async () => {
    let res = await post('/jobs', { name: 'no-such-job' });
    assert.equal(res.status, 404);
    assert.equal((await errorOf(res)).code, 'BACKJOB_ERR_UNKNOWN_JOB');
    res = await post('/jobs', { name: 'internal' });
    assert.equal(res.status, 403);
    assert.equal((await errorOf(res)).code, 'BACKJOB_ERR_NOT_LAUNCHABLE');
    res = await post('/jobs', { route: '/admin/purge', method: 'POST' });
    assert.equal(res.status, 403);
    assert.equal((await errorOf(res)).code, 'BACKJOB_ERR_NOT_LAUNCHABLE');
  });

  test('a launchable prefix cannot be left with characters the URL parser drops (tab, newline, trailing space)', async () => {
    const before = (await t.backjob.list({})).length;
    // WHATWG URL parsing removes tabs and newlines and trims trailing spaces, which would turn these into /admin/purge.
    for (const route of ['/reports/\t../admin/purge', '/reports/.\n./admin/purge', '/reports/%2e\r%2e/admin/purge', '/reports/.. ']) {
      const res = await post('/jobs', { route, method: 'POST' });
      assert.equal(res.status, 403, JSON.stringify(route));
      assert.equal((await errorOf(res)).code, 'BACKJOB_ERR_NOT_LAUNCHABLE');
    }
    assert.equal((await t.backjob.list({})).length, before, 'no job was started');
  });

  test('malformed requests are 400, non-JSON 415, oversize 413, never a started job', async () => {
    const before = (await t.backjob.list({})).length;
    const cases: Array<[unknown, number, string]> = [
      ['{not json', 400, 'BACKJOB_ERR_INVALID'],
      [[1, 2], 400, 'BACKJOB_ERR_INVALID'],
      [{}, 400, 'BACKJOB_ERR_INVALID'],
      [{ name: 'export', route: '/reports/mine' }, 400, 'BACKJOB_ERR_INVALID'],
      [{ name: 'export', extra: 1 }, 400, 'BACKJOB_ERR_INVALID'],
      [{ name: 'export', params: [1] }, 400, 'BACKJOB_ERR_INVALID'],
      [{ name: 42 }, 400, 'BACKJOB_ERR_INVALID'],
      [{ name: 'export', method: 'POST' }, 400, 'BACKJOB_ERR_INVALID'],
      [{ route: 'reports/mine' }, 400, 'BACKJOB_ERR_INVALID'],
      [{ route: '/reports/mine', method: 'PO ST' }, 400, 'BACKJOB_ERR_INVALID'],
      [{ route: '/reports/mine', bodyType: 'xml' }, 400, 'BACKJOB_ERR_INVALID'],
      [{ route: '/reports/mine', params: { a: { b: 1 } } }, 400, 'BACKJOB_ERR_INVALID'],
      [{ name: 'export', params: { blob: 'x'.repeat(64 * 1024) } }, 413, 'BACKJOB_ERR_TOO_LARGE'],
    ];
    for (const [body, status, code] of cases) {
      const res = await post('/jobs', body);
      assert.equal(res.status, status, JSON.stringify(body).slice(0, 80));
      const error = await errorOf(res);
      assert.equal(error.code, code);
      assert.equal(typeof error.message, 'string');
    }
    const form = await fetch(`${t.url}/backjob/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'name=export',
    });
    assert.equal(form.status, 415);
    const empty = await fetch(`${t.url}/backjob/jobs`, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' } });
    assert.equal(empty.status, 400);
    assert.equal((await errorOf(empty)).code, 'BACKJOB_ERR_INVALID');
    // What the body parser refuses is the client's fault too, never a 500.
    const start = JSON.stringify({ name: 'export' });
    const parserCases: Array<[Record<string, string>, string | Blob, number, string]> = [
      [{ 'content-type': 'application/json; charset=latin1' }, start, 415, 'BACKJOB_ERR_UNSUPPORTED_MEDIA_TYPE'],
      [{ 'content-type': 'application/json', 'content-encoding': 'x-unknown' }, start, 415, 'BACKJOB_ERR_UNSUPPORTED_MEDIA_TYPE'],
      [{ 'content-type': 'application/json', 'content-encoding': 'gzip' }, new Blob(['not gzip']), 400, 'BACKJOB_ERR_INVALID'],
    ];
    for (const [headers, body, status, code] of parserCases) {
      const res = await fetch(`${t.url}/backjob/jobs`, { method: 'POST', headers, body });
      assert.equal(res.status, status, JSON.stringify(headers));
      assert.equal((await errorOf(res)).code, code);
    }
    assert.equal((await t.backjob.list({})).length, before);
  });

  test('a cross-origin start or cancel is refused (CSRF)', async () => {
    const foreign = await post('/jobs', { name: 'export' }, { cookie: 'user=alice', origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    assert.equal((await errorOf(foreign)).code, 'BACKJOB_ERR_CROSS_ORIGIN');
    const nullOrigin = await post('/jobs', { name: 'export' }, { origin: 'null' });
    assert.equal(nullOrigin.status, 403);
    const crossSite = await post('/jobs', { name: 'export' }, { 'sec-fetch-site': 'cross-site' });
    assert.equal(crossSite.status, 403);

    const { id } = (await (await post('/jobs', { name: 'wait' }, { cookie: 'user=alice', origin: t.url })).json()) as StartReply;
    const cancel = await post(`/jobs/${id}/cancel`, '', { cookie: 'user=alice', origin: 'https://evil.example' });
    assert.equal(cancel.status, 403);
    assert.equal((await t.backjob.status(id))!.status === 'canceled', false);
    await t.backjob.cancel(id);
  });

  test('GET /jobs/:id: the owner or the token holder sees it; anyone else gets the same 404 as for an unknown id', async () => {
    const { id, token } = (await (await post('/jobs', { name: 'export' }, { cookie: 'user=alice' })).json()) as StartReply;
    await ended(t.backjob, id);
    const asOwner = await get(`/jobs/${id}`, { cookie: 'user=alice' });
    assert.equal(asOwner.status, 200);
    assert.equal(asOwner.headers.get('cache-control'), 'no-store');
    const snapshot = (await asOwner.json()) as JobSnapshot;
    assert.equal(snapshot.status, 'completed');
    assert.ok(!('owner' in snapshot));

    assert.equal((await get(`/jobs/${id}`, { 'x-backjob-token': token })).status, 200);
    assert.equal((await get(`/jobs/${id}?token=${encodeURIComponent(token)}`)).status, 200);

    const denied = [
      await get(`/jobs/${id}`, { cookie: 'user=mallory' }),
      await get(`/jobs/${id}`),
      await get(`/jobs/${id}`, { 'x-backjob-token': t.backjob.tokenFor('another-job') }),
    ];
    const unknown = await get('/jobs/no-such-job-id', { cookie: 'user=alice' });
    const unknownBody = await unknown.json();
    for (const res of denied) {
      assert.equal(res.status, 404);
      assert.deepEqual(await res.json(), unknownBody, 'forbidden reads exactly like unknown');
    }
  });

  test('POST /jobs/:id/cancel by token cancels; by a stranger is 404', async () => {
    const { id, token } = (await (await post('/jobs', { name: 'wait' }, { cookie: 'user=alice' })).json()) as StartReply;
    await waitFor(async () => (await t.backjob.status(id))?.status === 'running', 'the job to run');
    const stranger = await post(`/jobs/${id}/cancel`, '', { cookie: 'user=mallory' });
    assert.equal(stranger.status, 404);
    const res = await post(`/jobs/${id}/cancel`, '', { 'x-backjob-token': token });
    assert.equal(res.status, 200);
    const reply = (await res.json()) as { canceled: boolean; snapshot: JobSnapshot };
    assert.equal(reply.canceled, true);
    assert.equal((await ended(t.backjob, id)).status, 'canceled');
    const again = (await (await post(`/jobs/${id}/cancel`, '', { cookie: 'user=alice' })).json()) as { canceled: boolean; snapshot: JobSnapshot };
    assert.equal(again.canceled, false);
    assert.equal(again.snapshot.status, 'canceled');
  });

  test("GET /jobs lists the caller's own jobs and needs a principal", async () => {
    const carol = (await (await post('/jobs', { name: 'export' }, { cookie: 'user=carol' })).json()) as StartReply;
    await (await post('/jobs', { name: 'export' }, { cookie: 'user=dave' })).json();
    await ended(t.backjob, carol.id);
    const anonymous = await get('/jobs');
    assert.equal(anonymous.status, 401);
    const res = await get('/jobs', { cookie: 'user=carol' });
    assert.equal(res.status, 200);
    const { jobs } = (await res.json()) as { jobs: JobSnapshot[] };
    assert.deepEqual(jobs.map((job) => job.id), [carol.id]);
    const completed = (await (await get('/jobs?status=completed,failed', { cookie: 'user=carol' })).json()) as { jobs: JobSnapshot[] };
    assert.deepEqual(completed.jobs.map((job) => job.id), [carol.id]);
    assert.equal((await get('/jobs?status=bogus', { cookie: 'user=carol' })).status, 400);
  });

  test("the router leaves the app's routes and errors alone", async () => {
    const other = await get('/not-ours');
    assert.equal(await other.text(), 'the app answered');
    const res = await fetch(`${t.url}/app/throws`);
    assert.equal(res.status, 500);
    assert.equal(await res.text(), 'app handler: app failure');
    assert.equal(appErrorHandled, true);
  });
});

describe('one origin policy for the HTTP API and the WebSocket', () => {
  const start = (t: TestApp, headers: Record<string, string>) =>
    fetch(`${t.url}/backjob/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ name: 'noop' }) });
  const handshake = async (t: TestApp, headers: Record<string, string>) => {
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/backjob/ws`, SUBPROTOCOL, { headers });
    const [status] = await Promise.race([
      once(ws, 'unexpected-response').then(([, res]) => [(res as { statusCode: number }).statusCode]),
      once(ws, 'open').then(() => [101]),
    ]);
    ws.terminate();
    return status;
  };
  const proxied = { origin: 'https://jobs.example', 'x-forwarded-host': 'jobs.example', 'x-forwarded-proto': 'https' };
  const define = (_app: express.Express, backjob: import('../types.js').BackJob) => {
    backjob.define('noop', async () => undefined, { launchable: true });
  };

  test("forwarded headers count only when the app's `trust proxy` trusts the sender, on both doors", async () => {
    const untrusting = await startTestApp({ appRoutes: define });
    untrusting.backjob.attach(untrusting.server);
    const trusting = await startTestApp({ appRoutes: define, before: (app) => app.set('trust proxy', 'loopback') });
    trusting.backjob.attach(trusting.server);
    try {
      assert.equal((await start(untrusting, proxied)).status, 403);
      assert.equal(await handshake(untrusting, proxied), 403);
      assert.equal((await start(trusting, proxied)).status, 202);
      // The upgrade never passes through Express: it uses the trust the app's router learned.
      assert.equal(await handshake(trusting, proxied), 101);
      assert.equal((await start(trusting, { ...proxied, origin: 'http://jobs.example' })).status, 403, 'scheme differs');
      assert.equal(await handshake(trusting, { ...proxied, origin: 'http://jobs.example' }), 403, 'scheme differs');
    } finally {
      await untrusting.close();
      await trusting.close();
    }
  });

  test('the scheme and port count: an https page, or another port, is not the origin of an http server', async () => {
    const t = await startTestApp({ appRoutes: define });
    t.backjob.attach(t.server);
    try {
      const port = new URL(t.url).port;
      assert.equal((await start(t, { origin: t.url })).status, 202);
      assert.equal((await start(t, { origin: `https://127.0.0.1:${port}` })).status, 403);
      assert.equal((await start(t, { origin: `http://127.0.0.1:${Number(port) + 1}` })).status, 403);
      assert.equal(await handshake(t, { origin: `https://127.0.0.1:${port}` }), 403);
    } finally {
      await t.close();
    }
  });

  test('`allowedOrigins` and `trustProxy` of createBackJob apply to both doors', async () => {
    const t = await startTestApp({ appRoutes: define, allowedOrigins: ['https://admin.example:443/'], trustProxy: ['127.0.0.1'] });
    t.backjob.attach(t.server);
    try {
      assert.equal((await start(t, { origin: 'https://admin.example' })).status, 202);
      assert.equal(await handshake(t, { origin: 'https://admin.example' }), 101);
      assert.equal((await start(t, { origin: 'https://admin.example:8443' })).status, 403);
      assert.equal(await handshake(t, proxied), 101, 'trustProxy without an Express setting');
    } finally {
      await t.close();
    }
  });

  test('a bad `allowedOrigins` or `trustProxy` fails at construction with a clear message', () => {
    assert.throws(() => createBackJob({ backend: memory(), allowedOrigins: ['admin.example'] }), /Expected `allowedOrigins` to be an array of origins/);
    assert.throws(() => createBackJob({ backend: memory(), trustProxy: ['not an address'] }), /Expected `trustProxy`/);
  });
});

test('a path that is not valid percent-encoding is a 400 with a code, not a 500', async () => {
  const t = await startTestApp();
  try {
    for (const path of ['/backjob/jobs/%E0%A4%A', '/backjob/jobs/%/cancel']) {
      const res = await fetch(`${t.url}${path}`, { method: path.endsWith('cancel') ? 'POST' : 'GET' });
      assert.equal(res.status, 400, path);
      assert.equal(((await res.json()) as ErrorReply).error.code, 'BACKJOB_ERR_INVALID');
    }
  } finally {
    await t.close();
  }
});
