/**
 * Fuzz: the SSE transport as `backjob.router()` mounts it, on a real port.
 * Each run opens `GET /backjob/events` with a random query (real job ids,
 * odd ones, tokens, repeats, junk parameters), a random `Last-Event-ID`
 * (valid cursors, near misses, huge numbers, junk), Origin and user; when a
 * stream opens, it POSTs random messages (near-valid client messages, any
 * JSON, truncated text) with random Content-Types, then drops the stream.
 *
 * Whatever comes, the process stays up, nothing is answered 5xx but a
 * documented 503, every refusal is `{ error: { code: 'BACKJOB_ERR_…' } }`,
 * every stream says hello first, and a legitimate client is served after.
 *
 * `FUZZ_SEED=<n>` replays a run, `FUZZ_RUNS=<n>` sets the runs (see fuzz-kit.ts).
 */
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { test } from 'node:test';
import fc from 'fast-check';
import { FuzzServer, ProcessGuard, anyText, checkProperty, nearMessageText, sometimes, timeoutFor, useFuzzServer, within } from '../testing/fuzz-kit.js';

let fuzz!: FuzzServer;
let guard!: ProcessGuard;
useFuzzServer((server, processGuard) => ((fuzz = server), (guard = processGuard)));

const REFUSALS = new Set([400, 403, 414, 431, 503]);
const POST_ANSWERS = new Set([202, 403, 404, 413, 415, 429]);

function query(ids: readonly string[]): fc.Arbitrary<string> {
  const id = fc.oneof(fc.constantFrom(...ids), fc.constantFrom('', 'x'.repeat(65), '..%2F', '%00', '__proto__'), fc.string({ maxLength: 20 }).map(encodeURIComponent));
  const param = fc.oneof(
    { weight: 4, arbitrary: id.map((v) => `job=${v}`) },
    fc.string({ maxLength: 40 }).map((v) => `token=${encodeURIComponent(v)}`),
    fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 })).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`),
  );
  return fc.oneof(fc.array(param, { maxLength: 8 }).map((ps) => (ps.length ? `?${ps.join('&')}` : '')), fc.constant(`?pad=${'a'.repeat(9_000)}`));
}

function lastEventId(ids: readonly string[]): fc.Arbitrary<string | undefined> {
  const cursor = fc.tuple(fc.constantFrom(...ids, 'abc'), fc.oneof(fc.nat(50), fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(1e20))).map(([id, seq]) => `${id}:${seq}`);
  const value = fc.oneof(
    fc.array(cursor, { minLength: 1, maxLength: 4 }).map((cs) => cs.join(',')),
    fc.string({ maxLength: 60 }).map((s) => s.replace(/[\r\n\0]/g, '').replace(/[^\x20-\x7e]/g, '?')),
    fc.constant('x:1,'.repeat(2_500)),
  );
  return sometimes(value, 2);
}

/** Opens a stream; resolves with the response (200) or the refusal's status and body. */
function open(path: string, headers: Record<string, string>): Promise<{ res: IncomingMessage; body?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: fuzz.portOf('default'), path: `/backjob/events${path}`, headers }, (res) => {
      if (res.statusCode === 200) return resolve({ res });
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ res, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test(
  'SSE: any query, Last-Event-ID and POSTed message is answered as documented, and the server keeps serving',
  { timeout: timeoutFor(500, 90_000) },
  async (t) => {
    const ids = fuzz.jobs.map((j) => j.id);
    const run = fc.asyncProperty(
      query(ids),
      lastEventId(ids),
      sometimes(fc.constantFrom('http://evil.example', `http://127.0.0.1:${fuzz.portOf('default')}`, 'null'), 3),
      sometimes(fc.constantFrom('alice', 'bob'), 2),
      fc.array(fc.tuple(fc.oneof(nearMessageText(fuzz.jobs), anyText), fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-8')), { maxLength: 4 }),
      async (path, cursor, origin, user, posts) => {
        const mark = guard.mark();
        const headers: Record<string, string> = { ...(cursor === undefined ? {} : { 'last-event-id': cursor }), ...(origin ? { origin } : {}), ...(user ? { 'x-user': user } : {}) };
        const { res, body } = await within(open(path, headers), 5_000, 'the stream or its refusal');
        if (res.statusCode !== 200) {
          assert.ok(REFUSALS.has(res.statusCode!), `answered ${res.statusCode}: ${body?.slice(0, 200)}`);
          if (res.statusCode !== 431) assert.match(JSON.parse(body!).error.code, /^BACKJOB_ERR_[A-Z_]+$/);
          guard.assertNone(mark, 'a refused stream');
          return;
        }
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        try {
          const hello = await within(
            new Promise<{ stream: string }>((resolve) => {
              const check = () => {
                const match = /data: (\{"type":"hello".*)\n/.exec(text);
                if (match) resolve(JSON.parse(match[1]!));
                else res.once('data', check);
              };
              check();
            }),
            5_000,
            'the hello',
          );
          assert.ok(text.startsWith('retry: 2000\n\ndata: {"type":"hello"'), `the stream began ${JSON.stringify(text.slice(0, 80))}`);
          for (const [message, type] of posts) {
            const answer = await fetch(`http://127.0.0.1:${fuzz.portOf('default')}/backjob/events/${hello.stream}`, {
              method: 'POST',
              headers: { 'content-type': type, ...(origin ? { origin } : {}), ...(user ? { 'x-user': user } : {}) },
              body: message.text,
            });
            assert.ok(POST_ANSWERS.has(answer.status), `POST ${message.label} answered ${answer.status}`);
            await answer.arrayBuffer();
          }
        } finally {
          res.destroy();
        }
        guard.assertNone(mark, 'a stream and its POSTs');
      },
    );
    await checkProperty(t, run, { runs: 500, runTimeoutMs: 20_000, timeLimitMs: timeoutFor(500, 80_000) });
    await fuzz.assertStillServes();
  },
);
