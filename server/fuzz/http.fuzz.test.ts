/**
 * Fuzz: the HTTP API on a real port. Each run sends one request with a random
 * method and a path under `/backjob` (the API's own endpoints with odd ids,
 * malformed percent-encoding, trailing slashes, other paths), a random
 * `?status=…&limit=…&token=…`, random Content-Type, Content-Encoding,
 * Origin, user and watch token, and a body of any JSON, an almost-valid start
 * request, random bytes or truncated JSON.
 *
 * Whatever comes, the process stays up (no exception escapes), nothing is
 * answered 5xx, and the API's endpoints answer every failure with a 4xx and
 * `{ error: { code: 'BACKJOB_ERR_…', message } }`.
 *
 * `FUZZ_SEED=<n>` replays a run, `FUZZ_RUNS=<n>` sets the runs (see fuzz-kit.ts).
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { test } from 'node:test';
import fc from 'fast-check';
import { FuzzServer, ProcessGuard, useFuzzServer, checkProperty, jsonText, sometimes, timeoutFor, within, type KnownJob } from '../testing/fuzz-kit.js';

let fuzz!: FuzzServer;
let guard!: ProcessGuard;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
useFuzzServer((server, processGuard) => ((fuzz = server), (guard = processGuard)), () => agent.destroy());

/** Which API endpoint a request is for, when the fuzzer built it from one (the answer is then checked strictly). */
type Endpoint = 'start' | 'list' | 'get' | 'cancel' | null;

/** A job id as a path segment: real ones, encoded oddities, malformed percent-encoding. */
function idSegment(jobs: readonly KnownJob[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...jobs.map((j) => j.id)) },
    fc.constantFrom('%', '%E0%A4%A', '%00', '%2F', '..', '%2e%2e', 'x'.repeat(65), '%F0%9F%92%A9', '__proto__', 'constructor'),
    fc.string({ maxLength: 70 }).filter((s) => s.length > 0).map(encodeURIComponent),
  );
}

/** A query value: valid statuses and limits, lists, repeats, garbage. */
const statusValue = fc.oneof(
  fc.subarray(['waiting', 'running', 'completed', 'failed', 'canceled'], { minLength: 1 }).map((s) => s.join(',')),
  fc.constantFrom('', ',', 'Running', 'waiting,,running', '%', '%E0%A4%A', '__proto__', 'toString'),
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
);
const limitValue = fc.oneof(
  fc.integer({ min: -5, max: 600 }).map(String),
  fc.constantFrom('', '1e2', '0x10', 'NaN', 'Infinity', '1.5', '9'.repeat(400), '%', ' 5', '5 '),
);

function queryOf(jobs: readonly KnownJob[]): fc.Arbitrary<string> {
  const param = fc.oneof(
    statusValue.map((v) => `status=${v}`),
    limitValue.map((v) => `limit=${v}`),
    fc.constantFrom(...jobs.map((j) => j.token), 'x', '').map((v) => `token=${encodeURIComponent(v)}`),
    fc.constantFrom('status[]=running', 'status[a]=b', 'limit[]=1', '__proto__[x]=1', 'status', 'limit'),
  );
  // Spaces escaped (a request line cannot carry them); malformed percent-encoding kept.
  return fc.oneof({ weight: 2, arbitrary: fc.constant('') }, fc.array(param, { minLength: 1, maxLength: 4 }).map((ps) => `?${ps.join('&').replaceAll(' ', '%20')}`));
}

/** Almost-valid `POST /jobs` bodies: the right fields with wrong types, unknown fields, prototype keys. */
const startBody = fc
  .record(
    {
      name: fc.oneof(fc.constantFrom('fuzz/echo', 'fuzz/hold', 'nope', '', 'x'.repeat(201)), fc.jsonValue({ maxDepth: 1 })),
      route: fc.oneof(fc.constantFrom('/fuzz/a', '/fuzz/', '/elsewhere', 'fuzz/a', '//fuzz/a', `/fuzz/${'x'.repeat(2050)}`), fc.jsonValue({ maxDepth: 1 })),
      method: fc.oneof(fc.constantFrom('GET', 'post', 'DELETE', '', 'G E T', 'x'.repeat(17)), fc.jsonValue({ maxDepth: 1 })),
      params: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }), fc.jsonValue({ maxDepth: 2 })),
      body: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }), fc.jsonValue({ maxDepth: 1 })),
      bodyType: fc.oneof(fc.constantFrom('form', 'json', 'xml'), fc.jsonValue({ maxDepth: 1 })),
    },
    { requiredKeys: [] },
  )
  .chain((fields) =>
    fc.constantFrom('', '"__proto__":{"name":"fuzz/echo"},', '"constructor":{},', '"extra":1,', '"name":"fuzz/echo","name":"fuzz/hold",').map((prefix) => {
      const json = JSON.stringify(fields);
      return json === '{}' ? `{${prefix.replace(/,$/, '')}}` : `{${prefix}${json.slice(1)}`;
    }),
  );

/** A request body, shown in a failure report as text (or hex) up to 200 characters, with its size. */
interface Body {
  bytes: Buffer;
}

function body(bytes: Buffer): Body {
  const text = bytes.toString('utf8');
  const printable = Buffer.from(text).equals(bytes) ? JSON.stringify(text.slice(0, 200)) : `hex ${bytes.subarray(0, 100).toString('hex')}`;
  const label = `${printable}${bytes.length > 200 ? '…' : ''} (${bytes.length} bytes)`;
  return { bytes, [fc.toStringMethod]: () => label } as Body;
}

const bodyOf = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 4, arbitrary: startBody.map((text) => body(Buffer.from(text))) },
  { weight: 2, arbitrary: jsonText.map(({ text }) => body(Buffer.from(text))) },
  { weight: 1, arbitrary: startBody.chain((text) => fc.nat(text.length).map((n) => body(Buffer.from(text.slice(0, n))))) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => body(Buffer.from(b))) },
  { weight: 1, arbitrary: fc.constantFrom(17 * 1024, 64 * 1024).map((n) => body(Buffer.from(`{"name":"fuzz/echo","params":{"pad":"${'x'.repeat(n)}"}}`))) },
);

const contentType = fc.option(
  fc.oneof(
    { weight: 4, arbitrary: fc.constant('application/json') },
    fc.constantFrom('application/json; charset=utf-8', 'application/json; charset=utf-16', 'application/json; charset=nope', 'APPLICATION/JSON', 'application/jsonx', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'application/json;'),
  ),
  { freq: 6, nil: undefined },
);

function requestOf(jobs: readonly KnownJob[]) {
  const id = idSegment(jobs);
  const target = fc.oneof(
    { weight: 3, arbitrary: fc.constant({ method: 'POST', path: '/backjob/jobs', endpoint: 'start' as Endpoint }) },
    { weight: 2, arbitrary: id.map((i) => ({ method: 'POST', path: `/backjob/jobs/${i}/cancel`, endpoint: 'cancel' as Endpoint })) },
    { weight: 2, arbitrary: fc.constant({ method: 'GET', path: '/backjob/jobs', endpoint: 'list' as Endpoint }) },
    { weight: 2, arbitrary: id.map((i) => ({ method: 'GET', path: `/backjob/jobs/${i}`, endpoint: 'get' as Endpoint })) },
    {
      weight: 2,
      arbitrary: fc.record({
        method: fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'), fc.stringMatching(/^[A-Z]{1,10}$/).filter((m) => m !== 'CONNECT')),
        path: fc.oneof(
          fc.constantFrom('/backjob', '/backjob/', '/backjob/jobs/', '/backjob//jobs', '/backjob/jobs/a/b', '/backjob/ws', '/BACKJOB/JOBS', '/backjob/%', '/backjob/jobs/%E0%A4%A/cancel/'),
          id.map((i) => `/backjob/${i}`),
        ),
        endpoint: fc.constant(null as Endpoint),
      }),
    },
  );
  return fc.record({
    target,
    query: queryOf(jobs),
    body: bodyOf,
    contentType,
    contentEncoding: sometimes(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-nope'), 8),
    origin: fc.option(fc.constantFrom('http://evil.example', 'null', 'http://127.0.0.1', SAME), { freq: 2, nil: undefined }),
    fetchSite: sometimes(fc.constantFrom('same-origin', 'cross-site', 'none', 'x'), 4),
    user: fc.option(fc.oneof(fc.constantFrom('ada', 'grace'), fc.stringMatching(/^[\x21-\x7e]{1,20}$/)), { freq: 2, nil: undefined }),
    token: fc.option(fc.oneof(fc.constantFrom(...jobs.map((j) => j.token)), fc.stringMatching(/^[\x21-\x7e]{0,40}$/)), { freq: 3, nil: undefined }),
  });
}

/** Replaced by the server's own origin when the request is sent. */
const SAME = 'same-origin';

interface Answer {
  status: number;
  type: string;
  body: Buffer;
}

function send(port: number, r: { method: string; path: string; headers: Record<string, string>; body?: Buffer }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: r.method, path: r.path, headers: r.headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

test(
  'no request to the HTTP API ends the process or gets a 5xx, and every API failure is a 4xx with a BACKJOB_ERR_ code',
  { timeout: timeoutFor(1_000, 60_000) },
  async (t) => {
    const port = fuzz.portOf('default');
    const run = fc.asyncProperty(requestOf(fuzz.jobs), async (r) => {
      const mark = guard.mark();
      const headers: Record<string, string> = {};
      if (r.contentType !== undefined) headers['content-type'] = r.contentType;
      if (r.contentEncoding !== undefined) headers['content-encoding'] = r.contentEncoding;
      if (r.origin !== undefined) headers.origin = r.origin === SAME ? `http://127.0.0.1:${port}` : r.origin;
      if (r.fetchSite !== undefined) headers['sec-fetch-site'] = r.fetchSite;
      if (r.user !== undefined) headers['x-user'] = r.user;
      if (r.token !== undefined) headers['x-backjob-token'] = r.token;
      const { method, path, endpoint } = r.target;
      const body = method === 'HEAD' ? undefined : r.body?.bytes;
      // Framed, whatever the method: Node's client sends a GET body raw, which the server would read as the next request.
      if (body !== undefined) headers['content-length'] = String(body.length);
      const what = `${method} ${path}${r.query}`;
      let answer: Answer;
      try {
        answer = await within(send(port, { method, path: path + r.query, headers, body }), 10_000, what);
      } catch (error) {
        guard.assertNone(mark, `while waiting for the answer to ${what}`);
        throw error;
      }
      guard.assertNone(mark, `answering ${what}`);
      assert.ok(answer.status >= 200 && answer.status < 500, `${what} answered ${answer.status}: ${answer.body.toString().slice(0, 300)}`);
      if (endpoint === null || method === 'HEAD') return;
      assert.match(answer.type, /^application\/json/, `${what} answered ${answer.status} as ${answer.type}`);
      const reply = JSON.parse(answer.body.toString()) as { error?: { code?: unknown; message?: unknown } };
      if (answer.status >= 400) {
        assert.match(String(reply.error?.code), /^BACKJOB_ERR_[A-Z0-9_]+$/, `${what} answered ${answer.status} with ${answer.body.toString().slice(0, 300)}`);
        assert.equal(typeof reply.error?.message, 'string');
      } else {
        assert.notEqual(typeof reply.error, 'object', `${what} answered ${answer.status} with an error body`); // a snapshot's `error` is a reason string
      }
    });
    await checkProperty(t, run, { runs: 1_000, runTimeoutMs: 20_000, timeLimitMs: timeoutFor(1_000, 50_000) });
    await fuzz.assertStillServes();
  },
);
