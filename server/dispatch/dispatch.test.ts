import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync, mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { IncomingHttpHeaders } from 'node:http';
import { sqlite } from '../index.js';
import { ended, eventsOf, logOf, startTestApp, waitFor, type TestApp, TEST_KEY } from '../testing/http-test-app.js';
import { JOB_HEADER, SIGNATURE_HEADER, bodyDigest, signRequest } from '../access/signing.js';
import type { BackJob } from '../types.js';
import { MAX_DISPATCH_BODY_BYTES } from './dispatch.js';
import { createBackJob, memory } from '../index.js';
import express from 'express';

/** What the echo routes answer: whether the request was recognised, and what the app's own parsers made of it. */
interface Echo {
  job: string | null;
  method: string;
  url: string;
  query: Record<string, unknown>;
  body: unknown;
  signature: string | null;
}

function echo(req: express.Request, res: express.Response): void {
  res.json({ job: req.backjob?.id ?? null, method: req.method, url: req.originalUrl, query: req.query, body: req.body ?? null, signature: req.headers[SIGNATURE_HEADER] ?? null });
}

/**
 * What an attacker who sees a dispatched request in flight (a proxy's log, a
 * shared loopback) sends before it arrives: its BackJob headers, with another
 * query, body, method or path. Keyed by the `race` query parameter of the
 * dispatched request.
 */
const FORGERIES: Record<string, (url: string) => { url: string; method: string; body?: string; type?: string }> = {
  query: (url) => ({ method: 'GET', url: url.replace('amount=1', 'amount=1000') }),
  'query order': (url) => ({ method: 'GET', url: url.replace('a=1&b=2', 'b=2&a=1') }),
  'form body': (url) => ({ method: 'POST', url, body: 'amount=9', type: 'application/x-www-form-urlencoded' }),
  'json body': (url) => ({ method: 'POST', url, body: '{"amount":9}', type: 'application/json' }),
  'added body': (url) => ({ method: 'POST', url, body: 'amount=1000', type: 'application/x-www-form-urlencoded' }),
  method: (url) => ({ method: 'DELETE', url }),
  path: (url) => ({ method: 'GET', url: url.replace('/echo', '/echo-other') }),
};

/** Starts a route job from inside a real request, so `as: req` is a real IncomingMessage with the user's headers. */
function startAsUserRoute(app: TestApp['app'], backjob: BackJob) {
  app.post('/start-as-me', async (req, res) => {
    const { id } = await backjob.start(
      { route: String(req.query.route), method: 'POST', body: { n: '1' } },
      { as: req, merge: false, delay: req.query.delay ? Number(req.query.delay) : undefined },
    );
    res.json({ id });
  });
}

describe('route dispatch', () => {
  let t: TestApp;
  /** Raw BackJob headers of every request that reached the app, captured before the router strips them. */
  const captured: Array<{ method: string; url: string; headers: IncomingHttpHeaders }> = [];
  let slowRouteSignal: AbortSignal | undefined;
  let progressRouteEndedResponse = false;
  /** Whether the app trusts its loopback peer as a proxy (`trust proxy`), per test. */
  let trustLoopbackProxy = false;
  /** What the app answered each forgery (see FORGERIES), by race name. */
  const forged = new Map<string, Echo>();

  before(async () => {
    t = await startTestApp({
      before: (app) => {
        app.set('trust proxy', (address: string) => trustLoopbackProxy && ['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(address));
        app.use((req, _res, next) => {
          if (req.headers[SIGNATURE_HEADER]) captured.push({ method: req.method, url: req.originalUrl, headers: { ...req.headers } });
          next();
        });
        // Holds a dispatched request marked `race` while its forgery goes first, within the window.
        app.use(async (req, _res, next) => {
          const race = new URL(req.originalUrl, 'http://x').searchParams.get('race');
          if (!race || !req.headers[SIGNATURE_HEADER] || req.headers['x-test-forgery']) return next();
          const forgery = FORGERIES[race]!(req.originalUrl);
          const headers: Record<string, string> = { 'x-test-forgery': '1' };
          for (const name of [SIGNATURE_HEADER, JOB_HEADER]) headers[name] = String(req.headers[name]);
          if (forgery.type) headers['content-type'] = forgery.type;
          const answer = await fetch(`${t.url}${forgery.url}`, { method: forgery.method, headers, body: forgery.body });
          forged.set(race, (await answer.json()) as Echo);
          next();
        });
      },
      appRoutes: (app, backjob) => {
        app.post('/reports/build', (req, res) => {
          assert.ok(req.backjob, 'a dispatched request has its job context');
          res.type('text').write(`title=${req.body.title}\nformat=${req.body.format}\n`);
          res.write('ünïcödé line\r\npartial');
          res.end(' last line');
        });
        app.get('/reports/one-long-line', async (_req, res) => {
          // 64 MiB without a newline (a blob, a minified JSON), then one short line.
          res.type('text');
          const chunk = 'x'.repeat(64 * 1024);
          for (let i = 0; i < 1024; i++) if (!res.write(chunk)) await once(res, 'drain');
          res.end('\r\nafter');
        });
        app.get('/reports/latin1', (_req, res) => {
          res.set('content-type', 'text/plain; charset=iso-8859-1').end(Buffer.from('café crème\nnaïve\n', 'latin1'));
        });
        app.put('/reports/json', (req, res) => {
          res.type('text').send(`body=${JSON.stringify(req.body)}\nquery=${JSON.stringify(req.query)}\nhasJob=${Boolean(req.backjob)}`);
        });
        app.post('/reports/forbidden', (_req, res) => {
          res.status(403).type('text').send('You may not build this report');
        });
        app.post('/reports/throws', () => {
          throw new Error('the report generator exploded');
        });
        app.post('/reports/login-redirect', (_req, res) => {
          res.redirect(302, '/login');
        });
        app.post('/reports/whoami', (req, res) => {
          const seen = `host=${req.headers.host}\nproto=${req.headers['x-forwarded-proto'] ?? 'none'}\nforwarded-host=${req.headers['x-forwarded-host'] ?? 'none'}\nfor=${req.headers['x-forwarded-for'] ?? 'none'}`;
          res.type('text').send(`cookie=${req.headers.cookie ?? 'none'}\nauthorization=${req.headers.authorization ?? 'none'}\n${seen}`);
        });
        app.post('/reports/progress', async (req, res) => {
          const job = req.backjob!;
          job.update({ progress: 25, text: 'reading' });
          job.log('step one');
          job.update(75);
          await job.finish({ rows: 42 });
          // `finish` ended the response through onEnd.
          progressRouteEndedResponse = res.writableEnded;
        });
        app.post('/reports/fails-itself', async (req) => {
          await req.backjob!.fail('no data for that month');
        });
        app.post('/reports/slow', (req, res) => {
          slowRouteSignal = req.backjob!.signal;
          res.write('started\n');
          req.backjob!.signal.addEventListener('abort', () => res.end());
        });
        app.all(['/echo', '/echo-other'], echo);
        app.post('/body-size', (req, res) => {
          res.type('text').send(`job=${req.backjob?.id ?? null} size=${JSON.stringify(req.body).length}`);
        });
        app.post('/raw', async (req, res) => {
          // Reads the stream itself, as multer or busboy do: every byte must be there, and then the end.
          const chunks: Buffer[] = [];
          for await (const chunk of req) chunks.push(chunk as Buffer);
          res.json({ job: req.backjob?.id ?? null, body: Buffer.concat(chunks).toString('base64') });
        });
        app.all('/probe', (req, res) => {
          res.json({ job: req.backjob?.id ?? null, signature: req.headers[SIGNATURE_HEADER] ?? null, jobHeader: req.headers[JOB_HEADER] ?? null });
        });
        backjob.define('hold', async (job) => {
          await new Promise((resolve) => job.signal.addEventListener('abort', resolve));
        });
        startAsUserRoute(app, backjob);
        app.post('/merge-probe', async (req, res) => {
          // Delayed, so the first job still waits when the second request comes.
          res.json(await backjob.start({ route: '/probe', method: 'GET' }, { as: req, delay: 60 }));
        });
      },
    });
  });
  after(() => t.close());

  test('POST with a url-encoded body: the route gets the body and its output becomes the log, line by line', async () => {
    const { id } = await t.backjob.start({ route: '/reports/build', method: 'POST', body: { title: 'Q3 & Q4', format: 'pdf' } });
    const job = await ended(t.backjob, id);
    assert.equal(job.status, 'completed', job.error);
    assert.deepEqual(await logOf(t.backjob, id), ['title=Q3 & Q4', 'format=pdf', 'ünïcödé line', 'partial last line']);
  });

  test('a response line far longer than a log line is cut as it streams, not gathered whole (which took minutes)', async () => {
    const { id } = await t.backjob.start({ route: '/reports/one-long-line' });
    const job = await ended(t.backjob, id);
    assert.equal(job.status, 'completed', job.error);
    const [long, after, ...rest] = await logOf(t.backjob, id);
    const max = t.backjob.host.options.maxLineLength;
    assert.equal(long!.length <= max, true);
    const cut = / … \[cut (\d+) characters\]$/.exec(long!);
    assert.ok(cut, 'the line ends in the cut marker');
    assert.equal(long!.length - cut[0].length + Number(cut[1]), 64 * 1024 * 1024, 'the marker counts what went missing');
    assert.equal(after, 'after');
    assert.deepEqual(rest, []);
  });

  test("a response in another charset than UTF-8 is read in its own", async () => {
    const { id } = await t.backjob.start({ route: '/reports/latin1' });
    assert.equal((await ended(t.backjob, id)).status, 'completed');
    assert.deepEqual(await logOf(t.backjob, id), ['café crème', 'naïve']);
  });

  test('JSON body and query string, with any method', async () => {
    const { id } = await t.backjob.start({
      route: '/reports/json',
      method: 'put',
      bodyType: 'json',
      body: { months: [1, 2], nested: { deep: true } },
      query: { year: '2024', tag: ['a', 'b'] },
    });
    const job = await ended(t.backjob, id);
    assert.equal(job.status, 'completed', job.error);
    assert.deepEqual(await logOf(t.backjob, id), [
      'body={"months":[1,2],"nested":{"deep":true}}',
      'query={"year":"2024","tag":["a","b"]}',
      'hasJob=true',
    ]);
  });

  test('a 403 fails the job with "403 Forbidden" and the response text', async () => {
    const { id } = await t.backjob.start({ route: '/reports/forbidden', method: 'POST' });
    const job = await ended(t.backjob, id);
    assert.equal(job.status, 'failed');
    assert.equal(job.error, '403 Forbidden: You may not build this report');
    assert.equal(job.errorCode, 'BACKJOB_ERR_HTTP_403');
  });

  test('a route that throws fails the job with 500', async () => {
    const { id } = await t.backjob.start({ route: '/reports/throws', method: 'POST' });
    const job = await ended(t.backjob, id);
    assert.equal(job.status, 'failed');
    assert.equal(job.errorCode, 'BACKJOB_ERR_HTTP_500');
    assert.match(job.error!, /^500 Internal Server Error/);
    assert.match(job.error!, /the report generator exploded/);
    assert.doesNotMatch(job.error!, /<\/?(html|pre|body)\b/i, 'HTML is reduced to text');
  });

  test('a redirect (to a login page) is a failure, not followed', async () => {
    const { id } = await t.backjob.start({ route: '/reports/login-redirect', method: 'POST' });
    const job = await ended(t.backjob, id);
    assert.equal(job.status, 'failed');
    assert.equal(job.errorCode, 'BACKJOB_ERR_HTTP_302');
    assert.equal(job.error, '302 Found: redirected to /login');
  });

  test('as the current user: the starting request\'s cookie and Authorization go along; anonymous: none', async () => {
    const res = await fetch(`${t.url}/start-as-me?route=/reports/whoami`, {
      method: 'POST',
      headers: { cookie: 'user=alice; session=s3cr3t', authorization: 'Bearer tok-alice' },
    });
    const { id } = (await res.json()) as { id: string };
    assert.equal((await ended(t.backjob, id)).status, 'completed');
    const host = new URL(t.url).host;
    assert.deepEqual(await logOf(t.backjob, id), [
      'cookie=user=alice; session=s3cr3t',
      'authorization=Bearer tok-alice',
      `host=${host}`,
      'proto=http',
      `forwarded-host=${host}`,
      'for=127.0.0.1',
    ]);
    assert.equal((await t.backjob.status(id))!.owner, 'alice');

    const anonymous = await t.backjob.start({ route: '/reports/whoami', method: 'POST' }, { as: 'anonymous' });
    assert.equal((await ended(t.backjob, anonymous.id)).status, 'completed');
    const lines = await logOf(t.backjob, anonymous.id);
    assert.deepEqual(lines.slice(0, 2), ['cookie=none', 'authorization=none']);
  });

  test("the job's request carries the scheme, host and client the app saw, never X-Forwarded headers it did not trust", async () => {
    const start = (headers: Record<string, string>) =>
      fetch(`${t.url}/start-as-me?route=/reports/whoami`, { method: 'POST', headers: { cookie: 'user=alice', ...headers } })
        .then((res) => res.json() as Promise<{ id: string }>)
        .then(async ({ id }) => (await ended(t.backjob, id), (await logOf(t.backjob, id)).slice(2)));
    const proxy = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'jobs.example', 'x-forwarded-for': '203.0.113.7' };
    const host = new URL(t.url).host;
    // Sent straight to an app that trusts no proxy: the user wrote them, and the app ignored them.
    assert.deepEqual(await start(proxy), [`host=${host}`, 'proto=http', `forwarded-host=${host}`, 'for=127.0.0.1']);
    // Behind a proxy the app trusts: what the app concluded from them goes along.
    trustLoopbackProxy = true;
    try {
      assert.deepEqual(await start(proxy), [`host=${host}`, 'proto=https', 'forwarded-host=jobs.example', 'for=203.0.113.7']);
    } finally {
      trustLoopbackProxy = false;
    }
  });

  test('the route reports through req.backjob: progress, text, log, and its own result', async () => {
    const { id } = await t.backjob.start({ route: '/reports/progress', method: 'POST' });
    const job = await ended(t.backjob, id);
    assert.equal(job.status, 'completed', job.error);
    assert.deepEqual(job.result, { rows: 42 });
    const events = await eventsOf(t.backjob, id);
    const progress = events.filter((e) => e.type === 'job:progress').map((e) => e.type === 'job:progress' && [e.progress, e.text]);
    assert.deepEqual(progress, [
      [25, 'reading'],
      [75, undefined],
    ]);
    assert.deepEqual(await logOf(t.backjob, id), ['step one']);
    assert.equal(progressRouteEndedResponse, true);
  });

  test('a route that fails its job through req.backjob ends the response and the job stays failed', async () => {
    const { id } = await t.backjob.start({ route: '/reports/fails-itself', method: 'POST' });
    const job = await ended(t.backjob, id);
    assert.equal(job.status, 'failed');
    assert.equal(job.error, 'no data for that month');
  });

  test('cancel aborts the request, and the route sees its signal abort', async () => {
    slowRouteSignal = undefined;
    const { id } = await t.backjob.start({ route: '/reports/slow', method: 'POST' });
    await waitFor(() => slowRouteSignal, 'the route to run');
    await waitFor(async () => (await logOf(t.backjob, id)).includes('started'), 'the first line');
    assert.equal(await t.backjob.cancel(id), true);
    await waitFor(() => slowRouteSignal!.aborted, "the route's signal to abort");
    const job = await ended(t.backjob, id);
    assert.equal(job.status, 'canceled');
  });

  test('a dispatched request is accepted once: replaying its exact headers gives an ordinary request', async () => {
    const { id } = await t.backjob.start({ route: '/probe', method: 'GET' });
    const job = await ended(t.backjob, id);
    assert.equal(job.status, 'completed', job.error);
    assert.deepEqual(JSON.parse((await logOf(t.backjob, id)).join('\n')), { job: id, signature: null, jobHeader: null });
    const original = captured.find((c) => c.headers[JOB_HEADER] === id)!;
    assert.ok(original, 'the dispatched request was captured');
    const replay = await fetch(`${t.url}${original.url}`, {
      headers: { [SIGNATURE_HEADER]: String(original.headers[SIGNATURE_HEADER]), [JOB_HEADER]: id },
    });
    assert.deepEqual(await replay.json(), { job: null, signature: null, jobHeader: null });
  });

  test('a valid signature for a job that already ended is refused with 409, and the route does not run', async () => {
    const { id } = await t.backjob.start({ name: 'hold' });
    await t.backjob.cancel(id);
    const signature = signRequest(Buffer.from(TEST_KEY), { jobId: id, method: 'GET', url: '/probe', bodyDigest: bodyDigest() });
    const res = await fetch(`${t.url}/probe`, { headers: { [SIGNATURE_HEADER]: signature, [JOB_HEADER]: id } });
    assert.equal(res.status, 409);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'BACKJOB_ERR_ENDED');
  });

  test('merging tells users apart by their credentials, without storing them', async () => {
    const startAs = async (cookie: string) => {
      const res = await fetch(`${t.url}/merge-probe`, { method: 'POST', headers: { cookie } });
      return (await res.json()) as { id: string; merged: boolean };
    };
    const first = await startAs('session=one');
    const same = await startAs('session=one');
    const other = await startAs('session=two');
    assert.deepEqual([first.merged, same.merged, other.merged], [false, true, false]);
    assert.equal(same.id, first.id);
    assert.notEqual(other.id, first.id);
    const job = (await t.backjob.status(first.id))!;
    assert.ok(!JSON.stringify(job).includes('session=one'), 'the job row holds no credentials');
    await Promise.all([t.backjob.cancel(first.id), t.backjob.cancel(other.id)]);
  });

  describe('a signature seen in flight carries nothing else, even within its window', () => {
    const genuine: Record<string, Parameters<BackJob['start']>[0]> = {
      query: { route: '/echo', query: { race: 'query', amount: '1' } },
      'query order': { route: '/echo', query: { race: 'query order', a: '1', b: '2' } },
      'form body': { route: '/echo', method: 'POST', query: { race: 'form body' }, body: { amount: '1' } },
      'json body': { route: '/echo', method: 'POST', query: { race: 'json body' }, bodyType: 'json', body: { amount: 1 } },
      'added body': { route: '/echo', method: 'POST', query: { race: 'added body' } },
      method: { route: '/echo', method: 'POST', query: { race: 'method' } },
      path: { route: '/echo', query: { race: 'path' } },
    };
    for (const [race, spec] of Object.entries(genuine)) {
      test(`another ${race}: the forgery is an ordinary request, the genuine one still runs`, async () => {
        const { id } = await t.backjob.start(spec);
        const job = await ended(t.backjob, id);
        assert.equal(job.status, 'completed', job.error);
        const copy = forged.get(race);
        assert.ok(copy, 'the forgery was sent first');
        assert.equal(copy.job, null, `the forgery (${copy.method} ${copy.url}) was not recognised`);
        assert.equal(copy.signature, null, 'and its BackJob headers were stripped');
        const seen = JSON.parse((await logOf(t.backjob, id)).join('\n')) as Echo;
        assert.equal(seen.job, id, 'the genuine request was recognised');
        if (race.includes('body')) assert.notDeepEqual(copy.body, seen.body, "the app's parser saw the forged body");
      });
    }
  });

  describe('genuine dispatch: every kind of query and body verifies as sent', () => {
    const run = async (spec: Parameters<BackJob['start']>[0]) => {
      const { id } = await t.backjob.start(spec);
      const job = await ended(t.backjob, id);
      assert.equal(job.status, 'completed', job.error);
      const seen = JSON.parse((await logOf(t.backjob, id)).join('\n')) as Echo;
      assert.equal(seen.job, id, 'recognised');
      return seen;
    };
    const text = 'Zürich – 東京 😀 a&b=c+d %41 ?#';

    test('GET with a query that needs encoding, repeated keys and an empty value', async () => {
      const seen = await run({ route: '/echo', query: { q: text, tag: ['x y', 'ü'], empty: '' } });
      assert.deepEqual(seen.query, { q: text, tag: ['x y', 'ü'], empty: '' });
    });

    test('POST with a form body in multi-byte UTF-8', async () => {
      const seen = await run({ route: '/echo', method: 'POST', body: { title: text, list: ['1', '2'] } });
      assert.deepEqual(seen.body, { title: text, list: ['1', '2'] });
    });

    test('POST with a JSON body in multi-byte UTF-8, and a query', async () => {
      const body = { title: text, nested: { deep: ['😀', null, 1.5] } };
      const seen = await run({ route: '/echo', method: 'POST', bodyType: 'json', body, query: { month: '3' } });
      assert.deepEqual(seen.body, body);
      assert.deepEqual(seen.query, { month: '3' });
    });

    test('POST and DELETE with no body', async () => {
      assert.equal((await run({ route: '/echo', method: 'POST' })).method, 'POST');
      assert.equal((await run({ route: '/echo', method: 'DELETE', query: { id: '7' } })).method, 'DELETE');
    });

    test('a body of exactly the limit is dispatched; one byte more is refused when the job starts', async () => {
      const pad = (bytes: number) => ({ pad: 'x'.repeat(bytes - '{"pad":""}'.length) });
      const { id } = await t.backjob.start({ route: '/body-size', method: 'POST', bodyType: 'json', body: pad(MAX_DISPATCH_BODY_BYTES) });
      assert.equal((await ended(t.backjob, id)).status, 'completed');
      assert.deepEqual(await logOf(t.backjob, id), [`job=${id} size=${MAX_DISPATCH_BODY_BYTES}`]);
      await assert.rejects(t.backjob.start({ route: '/echo', method: 'POST', bodyType: 'json', body: pad(MAX_DISPATCH_BODY_BYTES + 1) }), {
        code: 'BACKJOB_ERR_INVALID',
        message: new RegExp(`at most ${MAX_DISPATCH_BODY_BYTES} bytes`),
      });
    });
  });

  describe('signature checks (for a running job)', () => {
    let jobId: string;
    const key = Buffer.from(TEST_KEY);
    before(async () => {
      jobId = (await t.backjob.start({ name: 'hold' })).id;
      await waitFor(async () => (await t.backjob.status(jobId))?.status === 'running', 'the job to run');
    });
    after(() => t.backjob.cancel(jobId));

    const probe = async (headers: Record<string, string>, path = '/probe', method = 'GET') =>
      (await (await fetch(`${t.url}${path}`, { method, headers })).json()) as { job: string | null; signature: string | null; jobHeader: string | null };

    test('a signature for another path, job id or method, or a tampered one, gives no job context and is stripped', async () => {
      const forOtherPath = signRequest(key, { jobId, method: 'GET', url: '/elsewhere', bodyDigest: bodyDigest() });
      assert.deepEqual(await probe({ [SIGNATURE_HEADER]: forOtherPath, [JOB_HEADER]: jobId }), { job: null, signature: null, jobHeader: null });
      const valid = signRequest(key, { jobId, method: 'GET', url: '/probe', bodyDigest: bodyDigest() });
      assert.equal((await probe({ [SIGNATURE_HEADER]: valid, [JOB_HEADER]: 'someone-elses-job' })).job, null);
      assert.equal((await probe({ [SIGNATURE_HEADER]: valid, [JOB_HEADER]: jobId }, '/probe', 'POST')).job, null);
      const tampered = valid.replace(/sig=(.)/, (_m, c: string) => `sig=${c === 'a' ? 'b' : 'a'}`);
      assert.equal((await probe({ [SIGNATURE_HEADER]: tampered, [JOB_HEADER]: jobId })).job, null);
      const otherKey = signRequest(Buffer.from('another-key-0123456789-abcdefghij'), { jobId, method: 'GET', url: '/probe', bodyDigest: bodyDigest() });
      assert.equal((await probe({ [SIGNATURE_HEADER]: otherKey, [JOB_HEADER]: jobId })).job, null);
    });

    test('an expired timestamp is refused', async () => {
      const old = signRequest(key, { jobId, method: 'GET', url: '/probe', bodyDigest: bodyDigest() }, Date.now() - 10 * 60_000);
      assert.equal((await probe({ [SIGNATURE_HEADER]: old, [JOB_HEADER]: jobId })).job, null);
    });

    test('a valid signature is accepted once, its replay refused', async () => {
      const valid = signRequest(key, { jobId, method: 'GET', url: '/probe', bodyDigest: bodyDigest() });
      assert.equal((await probe({ [SIGNATURE_HEADER]: valid, [JOB_HEADER]: jobId })).job, jobId);
      assert.equal((await probe({ [SIGNATURE_HEADER]: valid, [JOB_HEADER]: jobId })).job, null);
    });

    type Sent = { method?: string; url: string; body?: string | Buffer; type?: string };
    let cases = 0;
    /** A request as signed, made unique (a signature is accepted once, and two alike in one second are one). */
    const unique = (sent: Sent): Sent => ({ ...sent, url: `${sent.url}${sent.url.includes('?') ? '&' : '?'}case=${++cases}` });
    const sign = (sent: Sent) => signRequest(key, { jobId, method: sent.method ?? 'GET', url: sent.url, bodyDigest: bodyDigest(sent.body) });
    const send = async (signature: string, sent: Sent) => {
      const headers: Record<string, string> = { [SIGNATURE_HEADER]: signature, [JOB_HEADER]: jobId };
      if (sent.type) headers['content-type'] = sent.type;
      const res = await fetch(`${t.url}${sent.url}`, { method: sent.method ?? 'GET', headers, body: sent.body as BodyInit | undefined });
      assert.equal(res.status, 200, await res.clone().text());
      return (await res.json()) as Echo & { body: unknown };
    };
    const json = 'application/json';
    const form = 'application/x-www-form-urlencoded';

    // Each forgery goes first, so that the genuine request after it proves the signature was valid
    // and unclaimed: the forgery was refused for what it changed, not as a replay.
    const forgeries: Array<[string, Sent, (genuine: Sent) => Sent]> = [
      ['another query value', { url: '/echo?amount=1' }, (g) => ({ ...g, url: g.url.replace('amount=1', 'amount=2') })],
      ['a query added', { url: '/echo' }, (g) => ({ ...g, url: `${g.url}&admin=1` })],
      ['the query dropped', { url: '/echo?amount=1' }, (g) => ({ ...g, url: g.url.split('?')[0]! })],
      ['the query reordered', { url: '/echo?a=1&b=2' }, (g) => ({ ...g, url: g.url.replace('a=1&b=2', 'b=2&a=1') })],
      ['the query re-encoded', { url: '/echo?q=%C3%BC' }, (g) => ({ ...g, url: g.url.replace('%C3%BC', '%c3%bc') })],
      ['another path', { url: '/echo' }, (g) => ({ ...g, url: g.url.replace('/echo', '/echo-other') })],
      ['another method', { method: 'POST', url: '/echo' }, (g) => ({ ...g, method: 'PUT' })],
      ['another JSON body', { method: 'POST', url: '/echo', body: '{"amount":1}', type: json }, (g) => ({ ...g, body: '{"amount":9}' })],
      ['another form body, same length', { method: 'POST', url: '/echo', body: 'amount=1', type: form }, (g) => ({ ...g, body: 'amount=9' })],
      ['a body added', { method: 'POST', url: '/echo' }, (g) => ({ ...g, body: 'amount=1000', type: form })],
      ['the body dropped', { method: 'POST', url: '/echo', body: 'amount=1', type: form }, (g) => ({ ...g, body: undefined })],
      ['a multi-byte body changed in one byte', { method: 'POST', url: '/echo', body: '{"t":"ü"}', type: json }, (g) => ({ ...g, body: '{"t":"ý"}' })],
    ];
    for (const [what, shape, forge] of forgeries) {
      test(`a fresh signature with ${what} is not recognised, and the app still parses what came`, async () => {
        const genuine = unique(shape);
        const signature = sign(genuine);
        const forgery = forge(genuine);
        const refused = await send(signature, forgery);
        assert.equal(refused.job, null, `${forgery.method ?? 'GET'} ${forgery.url} ${forgery.body ?? ''}`);
        assert.equal(refused.signature, null, 'headers stripped');
        if (typeof forgery.body === 'string') {
          const parsed = forgery.type === json ? JSON.parse(forgery.body) : Object.fromEntries(new URLSearchParams(forgery.body));
          assert.deepEqual(refused.body, parsed, "the app's parser got the body");
        }
        assert.equal((await send(signature, genuine)).job, jobId, 'the genuine request, after it, is recognised');
      });
    }

    test("a recognised request's body still reaches the app: express.json, express.urlencoded, a stream reader", async () => {
      const asJson = unique({ method: 'POST', url: '/echo', body: JSON.stringify({ t: 'Zürich 😀', n: [1, 2] }), type: json });
      assert.deepEqual(await send(sign(asJson), asJson), { job: jobId, method: 'POST', url: asJson.url, query: { case: String(cases) }, body: { t: 'Zürich 😀', n: [1, 2] }, signature: null });
      const asForm = unique({ method: 'POST', url: '/echo', body: 'title=Z%C3%BCrich+%F0%9F%98%80&n=1&n=2', type: form });
      const seen = await send(sign(asForm), asForm);
      assert.equal(seen.job, jobId);
      assert.deepEqual(seen.body, { title: 'Zürich 😀', n: ['1', '2'] });
      // Every byte value, and a multi-byte character: the digest and the route see the same bytes.
      const bytes = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from('ü😀')]);
      const raw = unique({ method: 'POST', url: '/raw', body: bytes, type: 'application/octet-stream' });
      assert.deepEqual(await send(sign(raw), raw), { job: jobId, body: bytes.toString('base64') });
    });

    test("a refused request's body reaches the app whole: a bad signature, a malformed or expired header", async () => {
      const body = JSON.stringify({ t: 'Zürich 😀' });
      const sent = unique({ method: 'POST', url: '/echo', body, type: json });
      const wrongKey = signRequest(Buffer.from('another-key-0123456789-abcdefghij'), { jobId, method: 'POST', url: sent.url, bodyDigest: bodyDigest(body) });
      const expired = signRequest(key, { jobId, method: 'POST', url: sent.url, bodyDigest: bodyDigest(body) }, Date.now() - 10 * 60_000);
      for (const signature of [wrongKey, expired, 'not a signature', `t=${Math.floor(Date.now() / 1000)},sig=${'0'.repeat(64)}`]) {
        const seen = await send(signature, sent);
        assert.equal(seen.job, null, signature);
        assert.deepEqual(seen.body, { t: 'Zürich 😀' }, signature);
      }
      const bytes = Buffer.from('ü😀 raw');
      const raw = unique({ method: 'POST', url: '/raw', body: bytes, type: 'application/octet-stream' });
      assert.deepEqual(await send(wrongKey, raw), { job: null, body: bytes.toString('base64') });
    });

    /** Sends over node:http, which lets a test choose the framing (chunked, or a Content-Length). */
    const sendFramed = (signature: string, url: string, body: Buffer, framing: 'chunked' | 'length') =>
      new Promise<Echo>((resolve, reject) => {
        const headers: Record<string, string> = { [SIGNATURE_HEADER]: signature, [JOB_HEADER]: jobId, 'content-type': json };
        if (framing === 'length') headers['content-length'] = String(body.length);
        const request = http.request(`${t.url}${url}`, { method: 'POST', headers }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve(JSON.parse(text) as Echo));
        });
        request.on('error', reject);
        // Two writes: chunked framing needs no Content-Length, and the body arrives in pieces.
        request.write(body.subarray(0, 3));
        request.end(body.subarray(3));
      });

    test('a signed request with a chunked body is not BackJob\'s, and its body reaches the app whole', async () => {
      const body = Buffer.from(JSON.stringify({ t: 'chunked ü' }));
      const url = unique({ url: '/echo' }).url;
      const signature = signRequest(key, { jobId, method: 'POST', url, bodyDigest: bodyDigest(body) });
      const seen = await sendFramed(signature, url, body, 'chunked');
      assert.equal(seen.job, null);
      assert.deepEqual(seen.body, { t: 'chunked ü' });
    });

    test('a signed body over the limit is not BackJob\'s even with a valid signature, and reaches the app whole', async () => {
      const body = Buffer.from(JSON.stringify({ pad: 'x'.repeat(MAX_DISPATCH_BODY_BYTES + 1 - 10) }));
      assert.equal(body.length, MAX_DISPATCH_BODY_BYTES + 1);
      const url = unique({ url: '/echo' }).url;
      const signature = signRequest(key, { jobId, method: 'POST', url, bodyDigest: bodyDigest(body) });
      const seen = await sendFramed(signature, url, body, 'length');
      assert.equal(seen.job, null);
      assert.equal((seen.body as { pad: string }).pad.length, MAX_DISPATCH_BODY_BYTES + 1 - 10);
    });

    test('a signed request claiming a huge Content-Length is answered by the app at once, not read', async () => {
      // Raw TCP: a fresh, well-formed signature and a Content-Length of a terabyte, then ten bytes,
      // to a route that answers without reading (no parser takes this type).
      const url = unique({ url: '/probe' }).url;
      const signature = signRequest(key, { jobId, method: 'POST', url, bodyDigest: bodyDigest() });
      const socket = connect(Number(new URL(t.url).port), '127.0.0.1');
      let answer = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
      socket.write(
        `POST ${url} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${1e12}\r\n` +
          `${SIGNATURE_HEADER}: ${signature}\r\n${JOB_HEADER}: ${jobId}\r\n\r\n{"a":"1234`,
      );
      try {
        // Reading the body first would wait for a terabyte; buffering it would take as much memory.
        await waitFor(() => /\r\n\r\n\{.*\}/.test(answer), 'an answer', 10_000);
        assert.match(answer, /^HTTP\/1\.1 200 /);
        assert.match(answer, /\{"job":null,"signature":null,"jobHeader":null\}/);
      } finally {
        socket.destroy();
      }
    });
  });
});

describe('route dispatch: BackJob mounted under a prefix', () => {
  test('the signature covers the URL as sent, prefix and query included, not the one a mount leaves in req.url', async () => {
    const app = express();
    const server = http.createServer(app).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const backjob = createBackJob({ backend: memory(), key: TEST_KEY, baseUrl: url });
    const area = express.Router();
    area.use(backjob.router());
    area.use(express.json());
    area.all('/echo', echo);
    app.use('/area', area);
    try {
      const { id } = await backjob.start({ route: '/area/echo', method: 'POST', bodyType: 'json', body: { a: 'ü' }, query: { q: '1' } });
      assert.equal((await ended(backjob, id)).status, 'completed');
      const seen = JSON.parse((await logOf(backjob, id)).join('\n')) as Echo;
      assert.deepEqual([seen.job, seen.url, seen.body], [id, '/area/echo?q=1', { a: 'ü' }]);

      backjob.define('hold', (job) => new Promise((resolve) => job.signal.addEventListener('abort', resolve)));
      const hold = (await backjob.start({ name: 'hold' })).id;
      await waitFor(async () => (await backjob.status(hold))?.status === 'running', 'the job to run');
      const signature = signRequest(Buffer.from(TEST_KEY), { jobId: hold, method: 'GET', url: '/area/echo?q=1', bodyDigest: bodyDigest() });
      const as = async (path: string) => ((await (await fetch(`${url}${path}`, { headers: { [SIGNATURE_HEADER]: signature, [JOB_HEADER]: hold } })).json()) as Echo).job;
      assert.equal(await as('/area/echo?q=2'), null, 'another query under the prefix');
      assert.equal(await as('/area/echo?q=1'), hold, 'the URL as signed');
      await backjob.cancel(hold);
    } finally {
      await backjob.close();
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('route dispatch: reaching the app', () => {
  test('a connection error fails the job with a clear reason', async () => {
    // A port that was free a moment ago: nothing listens there.
    const blocker = createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const port = (blocker.address() as { port: number }).port;
    blocker.close();
    await once(blocker, 'close');
    const t = await startTestApp({ baseUrl: `http://127.0.0.1:${port}` });
    try {
      const { id } = await t.backjob.start({ route: '/anything', method: 'POST' });
      const job = await ended(t.backjob, id);
      assert.equal(job.status, 'failed');
      assert.equal(job.errorCode, 'BACKJOB_ERR_DISPATCH');
      assert.match(job.error!, new RegExp(`127\\.0\\.0\\.1:${port}.*ECONNREFUSED`));
    } finally {
      await t.close();
    }
  });

  test('without baseUrl: fails naming the option, until the app served a request, then learns it', async () => {
    const t = await startTestApp({
      learnBaseUrl: true,
      appRoutes: (app) => {
        app.get('/hello', (_req, res) => res.send('hi\n'));
        app.get('/where', (req, res) => res.send(`${req.protocol}://${req.headers.host}`));
      },
    });
    try {
      const first = await t.backjob.start({ route: '/hello' });
      const failed = await ended(t.backjob, first.id);
      assert.equal(failed.status, 'failed');
      assert.match(failed.error!, /`baseUrl`/);

      assert.equal(await (await fetch(`${t.url}/hello`)).text(), 'hi\n');
      const second = await t.backjob.start({ route: '/hello' });
      assert.equal((await ended(t.backjob, second.id)).status, 'completed');
      assert.deepEqual(await logOf(t.backjob, second.id), ['hi']);
      // An anonymous job's request goes to the learned base URL as it is: the app's own address.
      const where = await t.backjob.start({ route: '/where' });
      assert.equal((await ended(t.backjob, where.id)).status, 'completed');
      assert.deepEqual(await logOf(t.backjob, where.id), [t.url]);
    } finally {
      await t.close();
    }
  });
});

describe('route dispatch: log bound', () => {
  test('what the route logs through req.backjob and what it writes share one per-job bound', async () => {
    const t = await startTestApp({
      maxLogLines: 5,
      appRoutes: (app) =>
        app.get('/chatty', (req, res) => {
          for (let i = 0; i < 10; i++) req.backjob!.log(`reported ${i}`);
          res.type('text').send(Array.from({ length: 10 }, (_, i) => `written ${i}`).join('\n'));
        }),
    });
    try {
      const { id } = await t.backjob.start({ route: '/chatty' });
      assert.equal((await ended(t.backjob, id)).status, 'completed');
      const log = await logOf(t.backjob, id);
      assert.deepEqual(log.slice(0, 5), ['reported 0', 'reported 1', 'reported 2', 'reported 3', 'reported 4']);
      assert.match(log[5]!, /log limit of 5 lines/);
      assert.equal(log.length, 6, 'one marker, then nothing');
    } finally {
      await t.close();
    }
  });
});

describe('route dispatch: credentials at rest', () => {
  test('an as-user job keeps its credentials sealed in SQLite, and deletes them once dispatched', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backjob-dispatch-'));
    const file = join(dir, 'jobs.db');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const t = await startTestApp({
      backend: sqlite({ file }),
      appRoutes: (app, backjob) => {
        app.post('/reports/whoami', async (req, res) => {
          await gate;
          res.send(`cookie=${req.headers.cookie}`);
        });
        startAsUserRoute(app, backjob);
      },
    });
    try {
      const res = await fetch(`${t.url}/start-as-me?route=/reports/whoami&delay=2`, {
        method: 'POST',
        headers: { cookie: 'user=bob; session=TOPSECRETCOOKIE', authorization: 'Bearer TOPSECRETBEARER' },
      });
      const { id } = (await res.json()) as { id: string };
      await t.backjob.host.backend.store.get(id); // the row exists: whatever the store keeps is on disk by now
      const onDisk = () => readdirSync(dir).map((name) => readFileSync(join(dir, name)).toString('latin1')).join('');
      assert.ok(!onDisk().includes('TOPSECRETCOOKIE'), 'no plain cookie in the database files');
      assert.ok(!onDisk().includes('TOPSECRETBEARER'), 'no plain Authorization in the database files');

      await waitFor(async () => (await t.backjob.status(id))?.status === 'running', 'the job to start');
      release();
      const job = await ended(t.backjob, id);
      assert.equal(job.status, 'completed', job.error);
      assert.deepEqual(await logOf(t.backjob, id), ['cookie=user=bob; session=TOPSECRETCOOKIE']);
      assert.equal(await t.backjob.host.backend.store.takeCredentials(id), null, 'taken once, gone after');
    } finally {
      release();
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an as-user job canceled before it ran leaves no credentials behind', async () => {
    const t = await startTestApp({ appRoutes: (app, backjob) => startAsUserRoute(app, backjob) });
    try {
      const res = await fetch(`${t.url}/start-as-me?route=/reports/never&delay=60`, {
        method: 'POST',
        headers: { cookie: 'user=bob; session=TOPSECRETCOOKIE' },
      });
      const { id } = (await res.json()) as { id: string };
      assert.equal(await t.backjob.cancel(id), true);
      // Ended jobs are kept for `allBacklogDays`: their sealed cookies must not be.
      assert.equal(await t.backjob.host.backend.store.takeCredentials(id), null);
    } finally {
      await t.close();
    }
  });
});
