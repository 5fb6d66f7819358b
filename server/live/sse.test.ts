/**
 * The SSE transport against a real server: a real BackJob (memory backend),
 * the transport on a real port, and a raw HTTP client reading the event stream.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { readServerMessage, type ClientMessage, type JobEvent, type ServerMessage } from '../../shared/protocol.js';
import { LiveServer, waitFor } from '../testing/live-test-kit.js';
import { createSseTransport, type SseOptions, type SseTransport } from './sse.js';

/** One open event stream, recording what it gets. */
class TestStream {
  readonly messages: ServerMessage[] = [];
  /** Each message's data as it came, before {@link readServerMessage} unpacked it. */
  readonly raw: string[] = [];
  readonly ids: string[] = [];
  comments = 0;
  ended = false;
  private buffer = '';
  private data: string[] = [];

  constructor(readonly res: IncomingMessage) {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => this.parse(chunk));
    res.on('close', () => (this.ended = true));
  }

  get stream(): string {
    const hello = this.messages.find((m) => m.type === 'hello');
    return (hello as { stream: string }).stream;
  }

  events(job: string): JobEvent[] {
    return this.messages.flatMap((m) => (m.type === 'events' && m.job === job ? m.events : []));
  }

  lines(job: string): string[] {
    return this.events(job).flatMap((e) => (e.type === 'job:log' ? [e.line] : []));
  }

  close(): void {
    this.res.destroy();
  }

  private parse(chunk: string): void {
    this.buffer += chunk;
    let at: number;
    while ((at = this.buffer.indexOf('\n')) !== -1) {
      const line = this.buffer.slice(0, at);
      this.buffer = this.buffer.slice(at + 1);
      if (line === '') {
        if (this.data.length > 0) {
          this.raw.push(this.data.join('\n'));
          this.messages.push(readServerMessage(this.raw.at(-1)!));
        }
        this.data = [];
      } else if (line.startsWith(':')) this.comments += 1;
      else if (line.startsWith('data: ')) this.data.push(line.slice(6));
      else if (line.startsWith('id: ')) this.ids.push(line.slice(4));
    }
  }
}

let live: LiveServer;
let sse: SseTransport;
let server: Server;
let origin: string;

async function serve(options: SseOptions = {}): Promise<void> {
  sse = createSseTransport(live.backjob.host, options);
  server = createServer((req, res) => sse.handle(req, res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function unserve(): Promise<void> {
  sse.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** `GET /backjob/events…`: the stream, or the refusal's status and body. */
function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; stream?: TestStream; body?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${origin}/backjob/events${path}`, { headers }, (res) => {
      if (res.statusCode === 200) return resolve({ status: 200, stream: new TestStream(res) });
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function open(path: string, headers: Record<string, string> = {}): Promise<TestStream> {
  const reply = await get(path, headers);
  assert.equal(reply.status, 200, reply.body);
  const stream = reply.stream!;
  await waitFor(() => stream.messages.some((m) => m.type === 'hello'), 'hello');
  return stream;
}

async function post(stream: string, message: ClientMessage | string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const body = typeof message === 'string' ? message : JSON.stringify(message);
  const response = await fetch(`${origin}/backjob/events/${stream}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: response.status, body: await response.text() };
}

const is = (type: ServerMessage['type'], job?: string) => (m: ServerMessage) => m.type === type && (job === undefined || (m as { job?: string }).job === job);

describe('SSE transport', () => {
  before(async () => {
    live = await LiveServer.start();
    await serve({ heartbeat: 100 });
  });
  after(async () => {
    await unserve();
    await live.close();
  });

  test('a stream says hello with its id; a POSTed subscribe streams the snapshot, then live events', async () => {
    const job = await live.manual('alice');
    const stream = await open('', { 'x-user': 'alice' });
    const hello = stream.messages[0] as Extract<ServerMessage, { type: 'hello' }>;
    assert.equal(hello.version, 1);
    assert.match(hello.stream!, /^[A-Za-z0-9_-]{22}$/);
    const reply = await post(stream.stream, { type: 'subscribe', ref: 'r1', job: job.id }, { 'x-user': 'alice' });
    assert.equal(reply.status, 202);
    await waitFor(() => stream.messages.some(is('snapshot', job.id)), 'snapshot');
    job.job.log('one');
    job.job.log('two');
    await waitFor(() => stream.lines(job.id).length === 2, 'two lines');
    assert.deepEqual(stream.lines(job.id), ['one', 'two']);
    const last = stream.events(job.id).at(-1)!;
    assert.equal(stream.ids.at(-1), `${job.id}:${last.seq}`, 'events carry <job>:<seq> ids');
    assert.equal(sse.stats().subscriptions, 1);
    job.finish();
    stream.close();
  });

  test('a stream asking for version 2 (`v=2`, as the client does) gets events packed; without it, whole', async () => {
    const job = await live.manual('alice');
    const packed = await open(`?v=2&job=${job.id}`, { 'x-user': 'alice' });
    const whole = await open(`?job=${job.id}`, { 'x-user': 'alice' });
    assert.equal((packed.messages[0] as Extract<ServerMessage, { type: 'hello' }>).version, 2);
    for (const stream of [packed, whole]) await waitFor(() => stream.messages.some(is('snapshot', job.id)), 'snapshot');
    job.job.log('one');
    job.job.log('two');
    for (const stream of [packed, whole]) await waitFor(() => stream.lines(job.id).length === 2, 'two lines');
    assert.deepEqual(packed.events(job.id), whole.events(job.id));
    const eventsData = (stream: TestStream) => stream.raw.map((data) => JSON.parse(data)).filter((m) => m.type === 'events');
    assert.ok(eventsData(packed).some((m) => m.events.includes('two')), 'lines as bare strings');
    assert.ok(eventsData(whole).every((m) => m.events.every((e: unknown) => typeof e === 'object')), 'whole events');
    assert.equal(packed.ids.at(-1), whole.ids.at(-1), 'the same cursor ids');
    job.finish();
    packed.close();
    whole.close();
  });

  test('a stream reopened with Last-Event-ID resumes mid-log: every line after it, none before, once', async () => {
    const job = await live.manual('alice');
    for (let i = 1; i <= 5; i++) job.job.log(`line ${i}`);
    await job.job.flush();
    const first = await open(`?job=${job.id}`, { 'x-user': 'alice' });
    await waitFor(() => first.lines(job.id).length === 5, 'five lines');
    const third = first.events(job.id).find((e) => e.type === 'job:log' && e.line === 'line 3')!;
    first.close();
    for (let i = 6; i <= 8; i++) job.job.log(`line ${i}`);
    await job.job.flush();

    const again = await open(`?job=${job.id}`, { 'x-user': 'alice', 'last-event-id': `${job.id}:${third.seq}` });
    await waitFor(() => again.lines(job.id).length === 5, 'lines 4 to 8');
    job.job.log('line 9');
    await waitFor(() => again.lines(job.id).length === 6, 'the live line');
    assert.deepEqual(again.lines(job.id), ['line 4', 'line 5', 'line 6', 'line 7', 'line 8', 'line 9']);
    assert.equal(again.messages.filter(is('snapshot', job.id)).length, 1);
    job.finish();
    again.close();
  });

  test('authorization: another user is refused like an unknown job, the watch token opens it, and a stream is its principal\'s alone', async () => {
    const job = await live.manual('alice');
    const bob = await open(`?job=${job.id}`, { 'x-user': 'bob' });
    const refused = await waitFor(() => bob.messages.find(is('error', job.id)), 'refusal');
    assert.equal((refused as { code: string }).code, 'BACKJOB_ERR_NOT_FOUND');
    assert.equal(bob.messages.some(is('snapshot')), false);

    const withToken = await open(`?job=${job.id}`, { 'x-user': 'bob', 'x-backjob-token': job.token });
    await waitFor(() => withToken.messages.some(is('snapshot', job.id)), 'snapshot with the token');

    const alice = await open('', { 'x-user': 'alice' });
    // Bob holds a leaked stream id, yet cannot drive Alice's stream.
    assert.equal((await post(alice.stream, { type: 'subscribe', job: job.id }, { 'x-user': 'bob' })).status, 404);
    assert.equal((await post(alice.stream, { type: 'list' })).status, 404);
    const unknown = await open('');
    await post(unknown.stream, { type: 'list', ref: 'l' });
    const listError = await waitFor(() => unknown.messages.find(is('error')), 'list refusal');
    assert.equal((listError as { code: string }).code, 'BACKJOB_ERR_UNAUTHORIZED');
    job.finish();
    for (const s of [bob, withToken, alice, unknown]) s.close();
  });

  test('origin policy: another site is refused on the stream and on its POSTs', async () => {
    const evil = await get('', { 'x-user': 'alice', origin: 'http://evil.example' });
    assert.equal(evil.status, 403);
    assert.equal(JSON.parse(evil.body!).error.code, 'BACKJOB_ERR_CROSS_ORIGIN');
    assert.equal((await get('', { 'sec-fetch-site': 'cross-site' })).status, 403);
    assert.equal((await get('', { origin })).status === 200, true, 'the page\'s own origin passes');
    const stream = await open('', { 'x-user': 'alice' });
    assert.equal((await post(stream.stream, { type: 'list' }, { 'x-user': 'alice', origin: 'http://evil.example' })).status, 403);
    stream.close();
  });

  test('an allowed other origin gets CORS, preflight included; a refused one gets none', async () => {
    const preflight = await fetch(`${origin}/backjob/events`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'last-event-id,x-backjob-token' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), origin);
    assert.equal(preflight.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(preflight.headers.get('access-control-allow-headers'), 'last-event-id,x-backjob-token');
    const refused = await fetch(`${origin}/backjob/events`, { method: 'OPTIONS', headers: { origin: 'http://evil.example' } });
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get('access-control-allow-origin'), null);
  });

  test('cancel and list work over POSTs', async () => {
    const job = await live.manual('alice');
    const stream = await open('', { 'x-user': 'alice' });
    await post(stream.stream, { type: 'list', ref: 'l1' }, { 'x-user': 'alice' });
    const page = await waitFor(() => stream.messages.find(is('list')), 'list page');
    assert.ok((page as { jobs: Array<{ id: string }> }).jobs.some((j) => j.id === job.id));
    await post(stream.stream, { type: 'cancel', ref: 'c1', job: job.id }, { 'x-user': 'alice' });
    await waitFor(() => stream.messages.some(is('canceled', job.id)), 'canceled');
    stream.close();
  });

  test('heartbeat comments keep a quiet stream alive', async () => {
    const stream = await open('');
    await waitFor(() => stream.comments >= 3, 'three heartbeats');
    stream.close();
  });

  test('a client that goes away leaves nothing behind', async () => {
    const jobs = await Promise.all([live.manual('alice'), live.manual('alice')]);
    const before = sse.stats();
    const stream = await open(`?job=${jobs[0].id}&job=${jobs[1].id}`, { 'x-user': 'alice' });
    await waitFor(() => stream.messages.filter(is('snapshot')).length === 2, 'two snapshots');
    assert.equal(sse.stats().streams, before.streams + 1);
    assert.equal(sse.stats().subscriptions, before.subscriptions + 2);
    stream.close();
    await waitFor(() => sse.stats().streams === before.streams, 'the stream is dropped');
    assert.equal(sse.stats().subscriptions, before.subscriptions);
    for (const job of jobs) job.finish();
  });

  test('a reader that stops reading gets every log line in order once it reads again, with progress coalesced', async () => {
    const LINES = 8_000; // below the default `maxLogLines`
    const job = await live.manual('alice');
    const stream = await open(`?job=${job.id}`, { 'x-user': 'alice' });
    await waitFor(() => stream.messages.some(is('snapshot', job.id)), 'snapshot');
    stream.res.pause();
    const pad = 'x'.repeat(2_000);
    let peakBuffered = 0;
    for (let i = 0; i < LINES; i++) {
      job.job.log(`${i} ${pad}`);
      if (i % 50 === 0) job.job.update(Math.floor((i / LINES) * 100));
      if (i % 500 === 499) {
        await job.job.flush();
        peakBuffered = Math.max(peakBuffered, sse.stats().bufferedBytes);
      }
    }
    job.finish();
    await waitFor(async () => (await live.backjob.status(job.id))?.status === 'completed', 'job to complete');
    // ~16 MB of events went by; the server held at most its high-water mark plus about a page.
    assert.ok(peakBuffered < 2 * 1024 * 1024, `buffered ${peakBuffered} bytes`);
    assert.ok(stream.lines(job.id).length < LINES, 'the reader was really paused');
    stream.res.resume();
    await waitFor(() => stream.events(job.id).some((e) => e.type === 'job:completed'), 'completion after resume', 30_000);
    const lines = stream.lines(job.id);
    assert.equal(lines.length, LINES);
    lines.forEach((line, i) => assert.ok(line.startsWith(`${i} `), `line ${i} is ${line.slice(0, 12)}`));
    const progress = stream.events(job.id).filter((e) => e.type === 'job:progress');
    assert.ok(progress.length < LINES / 50 / 2, `progress was coalesced (${progress.length} of ${LINES / 50} events)`);
    stream.close();
  });

  test('hostile input gets clear refusals and costs nothing', async () => {
    const bad = await get('?job=abc', { 'last-event-id': 'abc:1;DROP' });
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.body!).error.code, 'BACKJOB_ERR_INVALID');
    assert.equal((await get('?job=abc', { 'last-event-id': `abc:${'9'.repeat(40)}` })).status, 400);
    assert.equal((await get('?job=abc', { 'last-event-id': 'x:1,'.repeat(3_000) })).status, 400);
    assert.equal((await get(`?pad=${'a'.repeat(10_000)}`)).status, 414);
    assert.equal((await get(`?${Array.from({ length: 101 }, (_, i) => `job=j${i}`).join('&')}`)).status, 400);
    assert.equal((await get('?job=../../etc')).status, 400);
    const stream = await open('');
    assert.equal((await post(stream.stream, '{"type":"subscribe"', {})).status, 202);
    await waitFor(() => stream.messages.some((m) => m.type === 'error' && m.code === 'BACKJOB_ERR_BAD_FRAME'), 'bad frame error');
    assert.equal((await post(stream.stream, 'x'.repeat(20_000))).status, 413);
    assert.equal((await post('AAAAAAAAAAAAAAAAAAAAAA', { type: 'list' })).status, 404);
    assert.equal((await post('not-a-stream', { type: 'list' })).status, 404);
    const form = await fetch(`${origin}/backjob/events/${stream.stream}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
    assert.equal(form.status, 415);
    assert.equal((await fetch(`${origin}/backjob/events`, { method: 'DELETE' })).status, 405);
    // A flood of POSTs: past the rate limit they are refused (429), with one error on the stream.
    const statuses = await Promise.all(Array.from({ length: 120 }, () => post(stream.stream, { type: 'unlist' }).then((r) => r.status)));
    assert.ok(statuses.includes(429), 'over the rate limit');
    await waitFor(() => stream.messages.some((m) => m.type === 'error' && m.code === 'BACKJOB_ERR_RATE_LIMITED'), 'rate limit error');
    stream.close();
  });

  test('a stream whose POSTs keep flooding past the rate limit is cut off', async () => {
    await unserve();
    await serve({ rateLimit: 2 });
    try {
      const stream = await open('');
      for (let i = 0; i < 10 && !stream.ended; i++) await Promise.all(Array.from({ length: 10 }, () => post(stream.stream, { type: 'unlist' })));
      await waitFor(() => stream.ended, 'the flooder is cut off');
      assert.equal((await post(stream.stream, { type: 'unlist' })).status, 404, 'its id is gone with it');
    } finally {
      await unserve();
      await serve({ heartbeat: 100 });
    }
  });

  test('many streams: past `maxStreams` a new one is answered 503, and the others keep working', async () => {
    await unserve();
    await serve({ maxStreams: 5 });
    try {
      const streams = await Promise.all(Array.from({ length: 5 }, () => open('')));
      const refused = await get('');
      assert.equal(refused.status, 503);
      assert.equal(JSON.parse(refused.body!).error.code, 'BACKJOB_ERR_TOO_MANY_STREAMS');
      streams[0]!.close();
      await waitFor(() => sse.stats().streams === 4, 'one closed');
      (await open('')).close();
      for (const s of streams) s.close();
    } finally {
      await unserve();
      await serve({ heartbeat: 100 });
    }
  });
});

test('the Express router mounts the stream under basePath, behind the app\'s own middleware', async () => {
  const live = await LiveServer.start();
  const app = express();
  app.use((req, _res, next) => {
    req.headers['x-user'] = 'carol'; // what a session middleware would establish
    next();
  });
  app.use(live.backjob.router());
  const http = createServer(app);
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  try {
    const job = await live.manual('carol');
    const response = await fetch(`http://127.0.0.1:${(http.address() as AddressInfo).port}/backjob/events?job=${job.id}`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = response.body!.getReader();
    let text = '';
    while (!text.includes('"snapshot"')) text += new TextDecoder().decode((await reader.read()).value);
    assert.match(text, /"type":"hello"/);
    await reader.cancel();
    job.finish();
  } finally {
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
    await live.close();
  }
});
