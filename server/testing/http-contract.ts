/**
 * The HTTP API contract: what every adapter (adapter-apps.ts) must answer,
 * on a real server on loopback. One shim per adapter, identifying users by a
 * `user` cookie; the app's route `/reports/echo` is launchable.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { get as httpGet, request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { SUBPROTOCOL, TICKET_PROTOCOL_PREFIX, type ErrorReply, type JobSnapshot, type StartReply, type TicketReply } from '../../shared/protocol.js';
import { clientBundle } from '../http/client-bundle.js';
import { createBackJob, memory } from '../index.js';
import type { BackJobServer } from '../shim.js';
import type { Adapter } from './adapter-apps.js';
import { TEST_KEY, ended, logOf, waitFor } from './http-test-app.js';

const ALLOWED = 'https://admin.example';

/** The contract, as one `describe` for `adapter`. */
export function httpContract(adapter: Adapter): void {
  describe(`the HTTP API on ${adapter.name}`, () => {
    let backjob: BackJobServer;
    let url: string;
    let shutdown: () => Promise<void>;

    before(async () => {
      backjob = createBackJob({
        backend: memory(),
        key: TEST_KEY,
        // The framework's own request: every one of them has the headers.
        identify: (req) => /(?:^|;\s*)user=([^;]+)/.exec(req.headers.cookie ?? '')?.[1] ?? null,
        routes: ['/reports/*'],
        allowedOrigins: [ALLOWED],
        // Far above what any other test keeps waiting: a batch bigger than this is refused whole.
        maxWaitingPerOwner: 300,
      });
      backjob.define('export', async (job) => job.update({ progress: 50, text: 'half' }) ?? { ok: true }, { launchable: true });
      backjob.define('wait', (job) => new Promise((resolve) => job.signal.addEventListener('abort', resolve)), { launchable: true });
      backjob.define('internal', async () => undefined);
      await backjob.ready;
      const app = await adapter.mount(backjob);
      const hub = adapter.attaches ? null : backjob.attach(app.server);
      app.server.listen(0, '127.0.0.1');
      await once(app.server, 'listening');
      url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      shutdown = async () => {
        await hub?.close();
        await backjob.close();
        app.server.closeAllConnections();
        if (app.close) return app.close();
        app.server.close();
        await once(app.server, 'close');
      };
    });
    after(() => shutdown());

    const api = (path: string, init: RequestInit = {}) => fetch(`${url}/backjob${path}`, init);
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      api(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' || body instanceof Blob ? body : JSON.stringify(body) });
    const errorOf = async (res: Response) => ((await res.json()) as ErrorReply).error;
    const startAs = async (user: string, body: unknown) => (await (await post('/jobs', body, { cookie: `user=${user}` })).json()) as StartReply;

    test('POST /jobs starts a launchable job as the caller: 202 with id, token and snapshot', async () => {
      const res = await post('/jobs', { name: 'export' }, { cookie: 'user=alice', origin: url });
      assert.equal(res.status, 202);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      const reply = (await res.json()) as StartReply;
      assert.equal(reply.token, backjob.tokenFor(reply.id));
      assert.equal(reply.snapshot.name, 'export');
      assert.ok(!('owner' in reply.snapshot));
      const job = await ended(backjob, reply.id);
      assert.equal(job.owner, 'alice');
      assert.equal(job.status, 'completed');
    });

    test('GET /jobs lists the caller\'s own, needs a principal, checks its query', async () => {
      const mine = await startAs('carol', { name: 'export' });
      await startAs('dave', { name: 'export' });
      await ended(backjob, mine.id);
      assert.equal((await api('/jobs')).status, 401);
      const { jobs } = (await (await api('/jobs?status=completed', { headers: { cookie: 'user=carol' } })).json()) as { jobs: JobSnapshot[] };
      assert.deepEqual(jobs.map((job) => job.id), [mine.id]);
      assert.equal((await api('/jobs?status=bogus', { headers: { cookie: 'user=carol' } })).status, 400);
      assert.equal((await api('/jobs?limit=0', { headers: { cookie: 'user=carol' } })).status, 400);
    });

    test('GET /jobs/:id: the owner or the token; anyone else the same 404 as an unknown id', async () => {
      const { id, token } = await startAs('alice', { name: 'export' });
      assert.equal((await api(`/jobs/${id}`, { headers: { cookie: 'user=alice' } })).status, 200);
      assert.equal((await api(`/jobs/${id}`, { headers: { 'x-backjob-token': token } })).status, 200);
      assert.equal((await api(`/jobs/${id}?token=${encodeURIComponent(token)}`)).status, 200);
      const unknown = await (await api('/jobs/no-such-job', { headers: { cookie: 'user=alice' } })).json();
      for (const headers of [{ cookie: 'user=mallory' }, {}] as Record<string, string>[]) {
        const res = await api(`/jobs/${id}`, { headers });
        assert.equal(res.status, 404);
        assert.deepEqual(await res.json(), unknown);
      }
    });

    test('POST /jobs/:id/cancel: by token it cancels, a stranger gets 404, another site 403', async () => {
      const { id, token } = await startAs('alice', { name: 'wait' });
      await waitFor(async () => (await backjob.status(id))?.status === 'running', 'the job to run');
      assert.equal((await post(`/jobs/${id}/cancel`, '', { cookie: 'user=mallory' })).status, 404);
      const foreign = await post(`/jobs/${id}/cancel`, '', { cookie: 'user=alice', origin: 'https://evil.example' });
      assert.equal(foreign.status, 403);
      assert.equal((await errorOf(foreign)).code, 'BACKJOB_ERR_CROSS_ORIGIN');
      const res = await post(`/jobs/${id}/cancel`, '', { 'x-backjob-token': token });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { canceled: boolean }).canceled, true);
      assert.equal((await ended(backjob, id)).status, 'canceled');
    });

    test('the origin check refuses another site\'s start, a null origin and a cross-site form', async () => {
      for (const headers of [{ origin: 'https://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }] as Record<string, string>[]) {
        const res = await post('/jobs', { name: 'export' }, { cookie: 'user=alice', ...headers });
        assert.equal(res.status, 403, JSON.stringify(headers));
        assert.equal((await errorOf(res)).code, 'BACKJOB_ERR_CROSS_ORIGIN');
      }
      assert.equal((await post('/jobs', { name: 'export' }, { origin: ALLOWED })).status, 202, 'an allowed origin');
    });

    test('errors: unknown 404, not launchable 403, bad JSON 400, not JSON 415, over 16 KB 413, never a job', async () => {
      const before = (await backjob.list({})).length;
      const cases: Array<[string, Record<string, string>, number, string]> = [
        [JSON.stringify({ name: 'no-such-job' }), {}, 404, 'BACKJOB_ERR_UNKNOWN_JOB'],
        [JSON.stringify({ name: 'internal' }), {}, 403, 'BACKJOB_ERR_NOT_LAUNCHABLE'],
        [JSON.stringify({ route: '/admin/purge' }), {}, 403, 'BACKJOB_ERR_NOT_LAUNCHABLE'],
        ['{not json', {}, 400, 'BACKJOB_ERR_INVALID'],
        ['"export"', {}, 400, 'BACKJOB_ERR_INVALID'],
        [JSON.stringify({ name: 'export', extra: 1 }), {}, 400, 'BACKJOB_ERR_INVALID'],
        ['', {}, 400, 'BACKJOB_ERR_INVALID'],
        [JSON.stringify({ name: 'export', params: { pad: 'x'.repeat(17 * 1024) } }), {}, 413, 'BACKJOB_ERR_TOO_LARGE'],
        ['name=export', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'BACKJOB_ERR_UNSUPPORTED_MEDIA_TYPE'],
        [JSON.stringify({ name: 'export' }), { 'content-type': 'text/plain' }, 415, 'BACKJOB_ERR_UNSUPPORTED_MEDIA_TYPE'],
        [JSON.stringify({ name: 'export' }), { 'content-type': 'application/json; charset=latin1' }, 415, 'BACKJOB_ERR_UNSUPPORTED_MEDIA_TYPE'],
        [JSON.stringify({ name: 'export' }), { 'content-encoding': 'x-unknown' }, 415, 'BACKJOB_ERR_UNSUPPORTED_MEDIA_TYPE'],
        ['not gzip', { 'content-encoding': 'gzip' }, 400, 'BACKJOB_ERR_INVALID'],
      ];
      for (const [body, headers, status, code] of cases) {
        const res = await post('/jobs', body, headers);
        assert.equal(res.status, status, `${body.slice(0, 40)} ${JSON.stringify(headers)}`);
        const error = await errorOf(res);
        assert.equal(error.code, code);
        assert.equal(typeof error.message, 'string');
      }
      assert.equal((await backjob.list({})).length, before);
      // Still serving on the same connections after refusing bodies unread.
      assert.equal((await api('/jobs/x', { headers: { cookie: 'user=alice' } })).status, 404);
    });

    test('the 16 KB limit holds for a body without Content-Length (chunked) and for a compressed one, counted once decoded', async () => {
      const big = JSON.stringify({ name: 'export', params: { pad: 'x'.repeat(40 * 1024) } });
      const chunked = await new Promise<{ status?: number; body: string }>((resolve, reject) => {
        const req = httpRequest(`${url}/backjob/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          let body = '';
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode, body }));
        });
        req.on('error', reject);
        req.write(big.slice(0, 100));
        req.end(big.slice(100));
      });
      assert.equal(chunked.status, 413);
      assert.equal((JSON.parse(chunked.body) as ErrorReply).error.code, 'BACKJOB_ERR_TOO_LARGE');
      const compressed = await post('/jobs', new Blob([gzipSync(big)]), { 'content-encoding': 'gzip' });
      assert.equal(compressed.status, 413);
      const small = await post('/jobs', new Blob([gzipSync(JSON.stringify({ name: 'export' }))]), { 'content-encoding': 'gzip' });
      assert.equal(small.status, 202);
    });

    test('POST /jobs { batch, title }: one batch job of launchable members, as the caller; the list shows the batch, not its members', async () => {
      const batch = [{ name: 'export', params: { file: 'a' } }, { name: 'export', weight: 3 }, { route: '/reports/echo', params: { n: 1 } }];
      const res = await post('/jobs', { batch, title: 'Three parts' }, { cookie: 'user=erin', origin: url });
      assert.equal(res.status, 202);
      const reply = (await res.json()) as StartReply;
      assert.equal(reply.merged, false);
      assert.equal(reply.token, backjob.tokenFor(reply.id));
      assert.equal(reply.snapshot.batch, true);
      assert.equal(reply.snapshot.title, 'Three parts');
      const job = await ended(backjob, reply.id);
      assert.equal(job.status, 'completed');
      assert.equal(job.owner, 'erin');
      const members = await backjob.list({ parent: reply.id });
      assert.equal(members.length, 3);
      assert.ok(members.every((member) => member.owner === 'erin' && member.status === 'completed'));
      assert.deepEqual(job.children?.map((child) => child.weight), [1, 3, 1]);
      const { jobs } = (await (await api('/jobs', { headers: { cookie: 'user=erin' } })).json()) as { jobs: JobSnapshot[] };
      assert.deepEqual(jobs.map((listed) => listed.id), [reply.id], 'top-level jobs only');
    });

    test('a batch has its own body limit: past 16 KB it starts, a single start that big is still a 413', async () => {
      const pad = 'x'.repeat(200);
      const batch = Array.from({ length: 100 }, (_, i) => ({ name: 'export', params: { i, pad } }));
      assert.ok(JSON.stringify({ batch }).length > 16 * 1024);
      const res = await post('/jobs', { batch }, { cookie: 'user=frank' });
      assert.equal(res.status, 202);
      assert.equal((await ended(backjob, ((await res.json()) as StartReply).id)).status, 'completed');
      const huge = await post('/jobs', { batch: [{ name: 'export', params: { pad: 'x'.repeat(1100 * 1024) } }] }, { cookie: 'user=frank' });
      assert.equal(huge.status, 413);
      assert.equal((await errorOf(huge)).code, 'BACKJOB_ERR_TOO_LARGE');
      const single = await post('/jobs', { name: 'export', params: { pad: 'x'.repeat(20 * 1024) } }, { cookie: 'user=frank' });
      assert.equal(single.status, 413);
      assert.match((await errorOf(single)).message, /16kb/);
    });

    test('a bad batch is refused whole, saying which member and why, and starts nothing', async () => {
      const before = (await backjob.list({})).length;
      const many = (count: number) => Array.from({ length: count }, () => ({ name: 'export' }));
      const cases: Array<[unknown, number, string, RegExp?]> = [
        [{ batch: [{ name: 'export' }], extra: 1 }, 400, 'BACKJOB_ERR_INVALID', /extra/],
        [{ batch: [{ name: 'export' }], name: 'export' }, 400, 'BACKJOB_ERR_INVALID'],
        [{ batch: [] }, 400, 'BACKJOB_ERR_INVALID'],
        [{ batch: { name: 'export' } }, 400, 'BACKJOB_ERR_INVALID'],
        [{ batch: many(1001) }, 400, 'BACKJOB_ERR_INVALID', /1000/],
        [{ batch: [{ name: 'export' }, 'export'] }, 400, 'BACKJOB_ERR_INVALID', /^Job 2 of the batch: /],
        [{ batch: [{ name: 'export' }, { batch: [{ name: 'export' }] }] }, 400, 'BACKJOB_ERR_INVALID', /^Job 2 of the batch: .*nest/],
        [{ batch: [{ name: 'export', title: 'mine' }] }, 400, 'BACKJOB_ERR_INVALID', /^Job 1 of the batch: /],
        [{ batch: [{ name: 'export', extra: 1 }] }, 400, 'BACKJOB_ERR_INVALID', /^Job 1 of the batch: Unknown field "extra"/],
        [{ batch: [{ name: 'export' }, { name: 'no-such-job' }] }, 404, 'BACKJOB_ERR_UNKNOWN_JOB', /^Job 2 of the batch: /],
        [{ batch: [{ name: 'internal' }] }, 403, 'BACKJOB_ERR_NOT_LAUNCHABLE', /^Job 1 of the batch: /],
        [{ batch: [{ name: 'export' }, { name: 'export' }, { route: '/admin/purge' }] }, 403, 'BACKJOB_ERR_NOT_LAUNCHABLE', /^Job 3 of the batch: /],
        ...[0, -1, 'heavy', null, 1e400].map((weight): [unknown, number, string, RegExp] => [{ batch: [{ name: 'export', weight }] }, 400, 'BACKJOB_ERR_INVALID', /^Job 1 of the batch: .*weight/]),
        ...['', '   ', 'x'.repeat(201), 7].map((title): [unknown, number, string, RegExp] => [{ batch: [{ name: 'export' }], title }, 400, 'BACKJOB_ERR_INVALID', /title/]),
      ];
      for (const [body, status, code, message] of cases) {
        const res = await post('/jobs', body, { cookie: 'user=gina' });
        const shown = JSON.stringify(body).slice(0, 80);
        assert.equal(res.status, status, shown);
        const error = await errorOf(res);
        assert.equal(error.code, code, shown);
        if (message) assert.match(error.message, message, shown);
      }
      assert.equal((await backjob.list({})).length, before);
    });

    test('a batch over the per-user quota is a 429 with Retry-After, and nothing of it is left waiting', async () => {
      const before = (await backjob.list({})).length;
      const res = await post('/jobs', { batch: Array.from({ length: 301 }, () => ({ name: 'export' })) }, { cookie: 'user=hank' });
      assert.equal(res.status, 429);
      assert.equal((await errorOf(res)).code, 'BACKJOB_ERR_QUOTA');
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
      assert.equal((await backjob.list({})).length, before);
    });

    test('paths: malformed percent-encoding is a 400; what is not the API\'s is the app\'s', async () => {
      assert.equal((await api('/jobs/%E0%A4%A')).status, 400);
      for (const path of ['/backjob/nothing', '/backjob/client.0123456789ab.js', '/elsewhere']) {
        const res = await fetch(`${url}${path}`);
        assert.equal(res.status, 404, path);
        assert.equal(await res.text(), 'the app does not know this', path);
      }
      assert.equal(await (await fetch(`${url}/app/hello`)).text(), 'hello');
    });

    test('POST /tickets: a ticket for the caller; another site refused; CORS for an allowed origin', async () => {
      const res = await post('/tickets', '', { cookie: 'user=alice', origin: url });
      assert.equal(res.status, 200);
      const reply = (await res.json()) as TicketReply;
      assert.equal(typeof reply.ticket, 'string');
      assert.equal((await post('/tickets', '', { origin: 'https://evil.example' })).status, 403);
      const preflight = await api('/tickets', { method: 'OPTIONS', headers: { origin: ALLOWED, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get('access-control-allow-origin'), ALLOWED);
      assert.equal(preflight.headers.get('access-control-allow-credentials'), 'true');
      assert.equal(preflight.headers.get('access-control-allow-headers'), 'content-type');
      const cross = await post('/tickets', '', { origin: ALLOWED });
      assert.equal(cross.status, 200);
      assert.equal(cross.headers.get('access-control-allow-origin'), ALLOWED);
      const refused = await api('/tickets', { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
      assert.equal(refused.headers.get('access-control-allow-origin'), null);
    });

    test('the client bundle: /client.js revalidated with a 304, /client.<hash>.js immutable', async () => {
      const { hash } = await clientBundle();
      const entry = await api('/client.js');
      assert.equal(entry.status, 200);
      assert.equal(entry.headers.get('content-type'), 'text/javascript; charset=utf-8');
      assert.equal(entry.headers.get('cache-control'), 'no-cache');
      const text = await entry.text();
      assert.equal(text, `export * from './client.${hash}.js';\n`);
      // What the browser fetches next: the import, resolved against the entry's own URL.
      const imported = new URL(/from '([^']+)'/.exec(text)![1]!, `${url}/backjob/client.js`);
      assert.equal(imported.pathname, `/backjob/client.${hash}.js`);
      assert.equal((await fetch(imported)).status, 200);
      const [revalidated] = (await once(httpGet(`${url}/backjob/client.js`, { headers: { 'if-none-match': `"${hash}"` } }), 'response')) as [import('node:http').IncomingMessage];
      revalidated.resume();
      assert.equal(revalidated.statusCode, 304);
      const bundle = await api(`/client.${hash}.js`);
      assert.equal(bundle.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.match(await bundle.text(), /backjob-progress/);
    });

    test('a route job is dispatched through the adapter: signed, recognized, run as the user, its output the log', async () => {
      const { id } = await startAs('bob', { route: '/reports/echo', params: { month: 5 } });
      const job = await ended(backjob, id);
      assert.equal(job.status, 'completed', job.error);
      assert.deepEqual(await logOf(backjob, id), [`dispatched: ${id}`, 'job=yes', 'month=5', 'cookie=user=bob']);
      // The same route called by anyone else, with made-up BackJob headers, gets no job.
      const forged = await fetch(`${url}/reports/echo?month=1`, { headers: { 'x-backjob-job': id, 'x-backjob-signature': 'v1.0.forged' } });
      assert.equal(await forged.text(), 'job=no\nmonth=1\ncookie=none\n');
    });

    test('the live channel: a WebSocket opened with a ticket streams the job; another site is refused', async () => {
      const { id } = await startAs('alice', { name: 'export' });
      const { ticket } = (await (await post('/tickets', '', { cookie: 'user=alice' })).json()) as TicketReply;
      const ws = new WebSocket(`${url.replace('http', 'ws')}/backjob/ws`, [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${ticket}`]);
      const messages: Array<{ type: string; job?: string; snapshot?: JobSnapshot }> = [];
      ws.on('message', (data) => messages.push(JSON.parse(String(data))));
      await once(ws, 'open');
      ws.send(JSON.stringify({ type: 'subscribe', job: id }));
      const snapshot = await waitFor(() => messages.find((m) => m.type === 'snapshot' && m.job === id), 'the snapshot');
      assert.equal(snapshot.snapshot?.id, id);
      ws.close();
      const foreign = new WebSocket(`${url.replace('http', 'ws')}/backjob/ws`, SUBPROTOCOL, { origin: 'https://evil.example' });
      // Refused before it opens: the client's own error, on giving up, is expected.
      foreign.on('error', () => {});
      const [, res] = (await once(foreign, 'unexpected-response')) as [unknown, { statusCode: number }];
      assert.equal(res.statusCode, 403);
      foreign.terminate();
    });
  });
}
