import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync, mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { IncomingHttpHeaders } from 'node:http';
import { sqlite } from './index.js';
import { ended, eventsOf, logOf, startTestApp, waitFor, type TestApp, TEST_KEY } from './http-test-app.js';
import { JOB_HEADER, SIGNATURE_HEADER, signRequest } from './signing.js';
import type { BackJob } from './types.js';

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

  before(async () => {
    t = await startTestApp({
      before: (app) => {
        app.set('trust proxy', (address: string) => trustLoopbackProxy && ['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(address));
        app.use((req, _res, next) => {
          if (req.headers[SIGNATURE_HEADER]) captured.push({ method: req.method, url: req.originalUrl, headers: { ...req.headers } });
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
    const max = t.backjob.options.maxLineLength;
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
    const signature = signRequest(Buffer.from(TEST_KEY), { jobId: id, method: 'GET', path: '/probe' });
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
      const forOtherPath = signRequest(key, { jobId, method: 'GET', path: '/elsewhere' });
      assert.deepEqual(await probe({ [SIGNATURE_HEADER]: forOtherPath, [JOB_HEADER]: jobId }), { job: null, signature: null, jobHeader: null });
      const valid = signRequest(key, { jobId, method: 'GET', path: '/probe' });
      assert.equal((await probe({ [SIGNATURE_HEADER]: valid, [JOB_HEADER]: 'someone-elses-job' })).job, null);
      assert.equal((await probe({ [SIGNATURE_HEADER]: valid, [JOB_HEADER]: jobId }, '/probe', 'POST')).job, null);
      const tampered = valid.replace(/sig=(.)/, (_m, c: string) => `sig=${c === 'a' ? 'b' : 'a'}`);
      assert.equal((await probe({ [SIGNATURE_HEADER]: tampered, [JOB_HEADER]: jobId })).job, null);
      const otherKey = signRequest(Buffer.from('another-key-0123456789-abcdefghij'), { jobId, method: 'GET', path: '/probe' });
      assert.equal((await probe({ [SIGNATURE_HEADER]: otherKey, [JOB_HEADER]: jobId })).job, null);
    });

    test('an expired timestamp is refused', async () => {
      const old = signRequest(key, { jobId, method: 'GET', path: '/probe' }, Date.now() - 10 * 60_000);
      assert.equal((await probe({ [SIGNATURE_HEADER]: old, [JOB_HEADER]: jobId })).job, null);
    });

    test('a valid signature is accepted once, its replay refused', async () => {
      const valid = signRequest(key, { jobId, method: 'GET', path: '/probe' });
      assert.equal((await probe({ [SIGNATURE_HEADER]: valid, [JOB_HEADER]: jobId })).job, jobId);
      assert.equal((await probe({ [SIGNATURE_HEADER]: valid, [JOB_HEADER]: jobId })).job, null);
    });
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
    const t = await startTestApp({ learnBaseUrl: true, appRoutes: (app) => app.get('/hello', (_req, res) => res.send('hi\n')) });
    try {
      const first = await t.backjob.start({ route: '/hello' });
      const failed = await ended(t.backjob, first.id);
      assert.equal(failed.status, 'failed');
      assert.match(failed.error!, /`baseUrl`/);

      assert.equal(await (await fetch(`${t.url}/hello`)).text(), 'hi\n');
      assert.equal(t.backjob.options.baseUrl, t.url);
      const second = await t.backjob.start({ route: '/hello' });
      assert.equal((await ended(t.backjob, second.id)).status, 'completed');
      assert.deepEqual(await logOf(t.backjob, second.id), ['hi']);
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
      await t.backjob.backend.store.get(id); // the row exists: whatever the store keeps is on disk by now
      const onDisk = () => readdirSync(dir).map((name) => readFileSync(join(dir, name)).toString('latin1')).join('');
      assert.ok(!onDisk().includes('TOPSECRETCOOKIE'), 'no plain cookie in the database files');
      assert.ok(!onDisk().includes('TOPSECRETBEARER'), 'no plain Authorization in the database files');

      await waitFor(async () => (await t.backjob.status(id))?.status === 'running', 'the job to start');
      release();
      const job = await ended(t.backjob, id);
      assert.equal(job.status, 'completed', job.error);
      assert.deepEqual(await logOf(t.backjob, id), ['cookie=user=bob; session=TOPSECRETCOOKIE']);
      assert.equal(await t.backjob.backend.store.takeCredentials(id), null, 'taken once, gone after');
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
      assert.equal(await t.backjob.backend.store.takeCredentials(id), null);
    } finally {
      await t.close();
    }
  });
});
