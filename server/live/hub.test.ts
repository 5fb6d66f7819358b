import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket, { WebSocketServer } from 'ws';
import { MAX_CLIENT_FRAME, SUBPROTOCOL, SUBPROTOCOL_V1, type ServerMessage } from '../../shared/protocol.js';
import { coalesceProgress } from './coalesce.js';
import { createBackJob, memory, sqlite } from '../index.js';
import { LiveServer, TestClient, waitFor } from '../testing/live-test-kit.js';
import type { Hub, JobEvent } from '../types.js';

type Msg<T extends ServerMessage['type']> = Extract<ServerMessage, { type: T }>;
const is =
  <T extends ServerMessage['type']>(type: T, job?: string) =>
  (m: ServerMessage): m is Msg<T> =>
    m.type === type && (job === undefined || ('job' in m && m.job === job));

/** The HTTP status a refused handshake got. */
async function handshakeStatus(url: string, protocols: string | string[], options: WebSocket.ClientOptions = {}): Promise<number> {
  const ws = new WebSocket(url, protocols, options);
  const [, res] = (await Promise.race([once(ws, 'unexpected-response'), once(ws, 'open').then(() => [null, { statusCode: 101 }])])) as [
    unknown,
    { statusCode: number },
  ];
  ws.terminate();
  return res.statusCode;
}

describe('hub handshake', () => {
  let live: LiveServer;
  before(async () => {
    live = await LiveServer.start({ attach: { allowedOrigins: ['https://app.example'] } });
  });
  after(() => live.close());

  test('a foreign Origin is refused at the handshake with 403; an allowed one and none are accepted', async () => {
    assert.equal(await handshakeStatus(live.url, SUBPROTOCOL, { origin: 'https://evil.example' }), 403);
    assert.equal(await handshakeStatus(live.url, SUBPROTOCOL, { origin: 'https://app.example' }), 101);
    assert.equal(await handshakeStatus(live.url, SUBPROTOCOL), 101);
  });

  test('without the backjob.v2 or backjob.v1 subprotocol the handshake is refused', async () => {
    assert.equal(await handshakeStatus(live.url, 'backjob.v0'), 400);
    assert.equal(await handshakeStatus(live.url, []), 400);
    assert.equal(await handshakeStatus(live.url, SUBPROTOCOL_V1), 101);
    assert.equal(await handshakeStatus(live.url, SUBPROTOCOL), 101);
  });
});

test("an app's own upgrade listener, written as ws's README shows several servers on one port, keeps BackJob's sockets with hub.owns(req)", async () => {
  const server = createServer();
  const chat = new WebSocketServer({ noServer: true });
  chat.on('connection', (ws) => ws.send('chat'));
  let hub: Hub | undefined;
  // Registered before BackJob's, so it sees every upgrade first; without `owns` it would destroy BackJob's too.
  server.on('upgrade', (req, socket, head) => {
    if (req.url === '/chat') chat.handleUpgrade(req, socket, head, (ws) => chat.emit('connection', ws, req));
    else if (!hub!.owns(req)) socket.destroy();
  });
  const backjob = createBackJob({ backend: memory(), key: 'live-test-key-0123456789abcdef' });
  const errors: Error[] = [];
  backjob.on('error', (error) => errors.push(error));
  backjob.define('hello', async (job) => job.log('hello'));
  hub = backjob.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  try {
    const { id, token } = await backjob.start({ name: 'hello' });
    const client = await TestClient.open(`ws://127.0.0.1:${port}/backjob/ws`);
    client.send({ type: 'subscribe', job: id, token });
    await waitFor(() => client.events(id).some((e) => e.type === 'job:completed'), 'the job, watched to its end');
    assert.deepEqual(client.lines(id), ['hello']);
    await client.close();
    const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`);
    assert.equal(String((await once(ws, 'message'))[0]), 'chat', "the app's own socket");
    ws.close();
    const stray = new WebSocket(`ws://127.0.0.1:${port}/nobody`);
    await once(stray, 'error');
    assert.equal(hub.owns({ url: '/backjob/ws?v=2' } as IncomingMessage), true);
    assert.equal(hub.owns({ url: '/backjob/wsx' } as IncomingMessage), false);
    assert.deepEqual(errors, [], 'nothing contested BackJob’s path');
  } finally {
    await backjob.close();
    chat.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

for (const [shape, path, status] of [['{ server, path }', '/chat', 400], ['{ server }', undefined, 101]] as const) {
  for (const order of ['before', 'after'] as const) {
    test(`a ws server given ${shape} ${order} attach() takes BackJob's upgrades (${status}): the app hears why, once`, async () => {
      const server = createServer();
      const backjob = createBackJob({ backend: memory(), key: 'live-test-key-0123456789abcdef' });
      const errors: Error[] = [];
      backjob.on('error', (error) => errors.push(error));
      // The way ws's README attaches one server; with it, no other WebSocket endpoint can share the server.
      const options = path === undefined ? { server } : { server, path };
      let chat: WebSocketServer | undefined;
      if (order === 'before') chat = new WebSocketServer(options);
      backjob.attach(server);
      chat ??= new WebSocketServer(options);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      try {
        // Without a path, ws completes the handshake itself: the client is connected to the app's server, not BackJob.
        for (let i = 0; i < 2; i++) assert.equal(await handshakeStatus(`ws://127.0.0.1:${port}/backjob/ws`, SUBPROTOCOL), status);
        await waitFor(() => errors.length > 0, 'the error');
        await sleep(50);
        assert.equal(errors.length, 1, 'told once, not per connection');
        assert.match(errors[0]!.message, /answered BackJob's WebSocket path \/backjob\/ws.*\{ noServer: true \}.*hub\.owns\(req\)/);
      } finally {
        chat.close();
        await backjob.close();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  }
}

describe('hub default origin policy', () => {
  let live: LiveServer;
  before(async () => {
    live = await LiveServer.start();
  });
  after(() => live.close());

  test('same origin as Host is accepted, any other refused', async () => {
    assert.equal(await handshakeStatus(live.url, SUBPROTOCOL, { origin: `http://127.0.0.1:${live.port}` }), 101);
    assert.equal(await handshakeStatus(live.url, SUBPROTOCOL, { origin: `http://127.0.0.1:${live.port + 1}` }), 403);
    assert.equal(await handshakeStatus(live.url, SUBPROTOCOL, { origin: 'null' }), 403);
  });

  test('forwarded headers count only from a proxy the app trusts, and the scheme must match too', async () => {
    const proxied = { origin: 'https://jobs.example', headers: { 'x-forwarded-host': 'jobs.example', 'x-forwarded-proto': 'https' } };
    // Nobody trusted (the default): a client that sends the headers itself is judged by its real Host.
    assert.equal(await handshakeStatus(live.url, SUBPROTOCOL, proxied), 403);
    const trusting = await LiveServer.start({ backjob: { trustProxy: 'loopback' } });
    try {
      assert.equal(await handshakeStatus(trusting.url, SUBPROTOCOL, proxied), 101);
      assert.equal(await handshakeStatus(trusting.url, SUBPROTOCOL, { ...proxied, origin: 'https://evil.example' }), 403);
      assert.equal(await handshakeStatus(trusting.url, SUBPROTOCOL, { ...proxied, origin: 'http://jobs.example' }), 403, 'scheme differs');
      assert.equal(await handshakeStatus(trusting.url, SUBPROTOCOL, { ...proxied, origin: 'https://jobs.example:8443' }), 403, 'port differs');
    } finally {
      await trusting.close();
    }
  });

  test('a trusted proxy that names the upgrade\'s scheme `ws` or `wss` (as node-http-proxy and Vite\'s proxy do) means http or https', async () => {
    const trusting = await LiveServer.start({ backjob: { trustProxy: 'loopback' } });
    try {
      const proxied = (proto: string, origin: string) => ({ origin, headers: { 'x-forwarded-host': 'jobs.example', 'x-forwarded-proto': proto } });
      assert.equal(await handshakeStatus(trusting.url, SUBPROTOCOL, proxied('wss', 'https://jobs.example')), 101);
      assert.equal(await handshakeStatus(trusting.url, SUBPROTOCOL, proxied('ws', 'http://jobs.example')), 101);
      assert.equal(await handshakeStatus(trusting.url, SUBPROTOCOL, proxied('ws', 'https://jobs.example')), 403, 'scheme differs');
      assert.equal(await handshakeStatus(trusting.url, SUBPROTOCOL, proxied('WSS', 'http://jobs.example')), 403, 'scheme differs');
      // Vite's proxy without changeOrigin: the page's Host kept, only the scheme forwarded.
      const own = { origin: `http://127.0.0.1:${trusting.port}`, headers: { 'x-forwarded-proto': 'ws' } };
      assert.equal(await handshakeStatus(trusting.url, SUBPROTOCOL, own), 101);
    } finally {
      await trusting.close();
    }
  });

  test('the scheme counts: an https page is not the origin of an http server', async () => {
    assert.equal(await handshakeStatus(live.url, SUBPROTOCOL, { origin: `https://127.0.0.1:${live.port}` }), 403);
  });

  test('upgrades on other paths are left to other listeners', async () => {
    const other = new WebSocketServer({ noServer: true });
    other.on('connection', (ws) => ws.send('other'));
    const onUpgrade = (req: import('node:http').IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => {
      if (req.url === '/hmr') other.handleUpgrade(req, socket, head, (ws) => other.emit('connection', ws, req));
    };
    live.server.on('upgrade', onUpgrade);
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${live.port}/hmr`, { origin: 'http://elsewhere.example' });
      const [data] = await once(ws, 'message');
      assert.equal(data.toString(), 'other');
      ws.close();
    } finally {
      live.server.off('upgrade', onUpgrade);
      other.close();
    }
  });
});

describe('hub messages', () => {
  let live: LiveServer;
  before(async () => {
    live = await LiveServer.start({ attach: { rateLimit: 20 }, backjob: { concurrency: 20 } });
  });
  after(() => live.close());

  test("another user's job and a guessed id get the same NOT_FOUND; the owner and the token get a snapshot", async () => {
    const job = await live.manual('alice');
    const mallory = await TestClient.open(live.url, { headers: { 'x-user': 'mallory' } });
    mallory.send({ type: 'subscribe', ref: 'a', job: job.id });
    mallory.send({ type: 'subscribe', ref: 'b', job: 'guessed-id-123' });
    mallory.send({ type: 'subscribe', ref: 'c', job: job.id, token: 'not-the-token' });
    mallory.send({ type: 'cancel', ref: 'd', job: job.id });
    const refusals = await Promise.all(['a', 'b', 'c', 'd'].map((ref) => mallory.next((m): m is Msg<'error'> => m.type === 'error' && m.ref === ref, ref)));
    for (const refusal of refusals) {
      assert.equal(refusal.code, 'BACKJOB_ERR_NOT_FOUND');
      assert.equal(refusal.message, refusals[0].message);
    }
    assert.ok(!mallory.messages.some((m) => m.type === 'snapshot'));

    const alice = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    alice.send({ type: 'subscribe', job: job.id });
    assert.equal((await alice.next(is('snapshot', job.id), 'owner snapshot')).snapshot.status, 'running');

    const guest = await TestClient.open(live.url);
    guest.send({ type: 'subscribe', job: job.id, token: job.token });
    const snapshot = (await guest.next(is('snapshot', job.id), 'token snapshot')).snapshot;
    assert.equal(snapshot.id, job.id);
    assert.ok(!('owner' in snapshot), 'the owner never leaves the server');
    job.finish();
    await Promise.all([mallory.close(), alice.close(), guest.close()]);
  });

  test('malformed, oversized, binary and unknown frames each get their code, and the socket stays usable', async () => {
    const job = await live.manual('alice');
    const client = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    const expectError = async (frame: string | Buffer, code: string) => {
      const from = client.messages.length;
      client.ws.send(frame);
      const reply = await client.next(is('error'), code, from);
      assert.equal(reply.code, code);
    };
    await expectError('{not json', 'BACKJOB_ERR_BAD_FRAME');
    await expectError('[1,2]', 'BACKJOB_ERR_BAD_FRAME');
    await expectError(JSON.stringify({ type: 'subscribe', job: '../etc/passwd' }), 'BACKJOB_ERR_BAD_FRAME');
    await expectError(Buffer.from([1, 2, 3]), 'BACKJOB_ERR_BAD_FRAME');
    await expectError(JSON.stringify({ type: 'subscribe', job: job.id, pad: 'x'.repeat(MAX_CLIENT_FRAME) }), 'BACKJOB_ERR_TOO_LARGE');
    await expectError(JSON.stringify({ type: 'launch', job: job.id }), 'BACKJOB_ERR_UNKNOWN_TYPE');
    client.send({ type: 'subscribe', job: job.id });
    await client.next(is('snapshot', job.id), 'snapshot after errors');
    assert.equal(client.ws.readyState, WebSocket.OPEN);
    job.finish();
    await client.close();
  });

  test('past the rate limit frames are dropped unread with one error, and the socket recovers once it slows down', async () => {
    const job = await live.manual('alice');
    const client = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    assert.equal(client.messages.find(is('hello'))?.rateLimit, 20, 'the hello announces the limit');
    for (let i = 0; i < 30; i++) client.send({ type: 'subscribe', ref: `s${i}`, job: `guessed-${i}` });
    await client.next((m): m is Msg<'error'> => m.type === 'error' && m.code === 'BACKJOB_ERR_RATE_LIMITED', 'rate limit');
    await sleep(100);
    const replies = client.messages.filter((m) => m.type === 'error');
    assert.equal(replies.filter((m) => m.code === 'BACKJOB_ERR_RATE_LIMITED').length, 1, 'one rate-limit error for the run');
    assert.ok(replies.length <= 21 + 1, `at most the budget answered, got ${replies.length} replies`);
    // The bucket refills: a subscribe at a sane pace passes.
    await sleep(200);
    client.send({ type: 'subscribe', ref: 'again', job: job.id });
    assert.equal((await client.next(is('snapshot', job.id), 'a subscribe to pass again')).snapshot.id, job.id);
    job.finish();
    await client.close();
  });

  test('a socket that keeps flooding past the limit is closed with 1008', async () => {
    const client = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    for (let i = 0; i < 200; i++) client.send({ type: 'subscribe', job: `guessed-${i}` });
    await waitFor(() => client.closeCode, 'the socket to close');
    assert.equal(client.closeCode, 1008);
  });

  test('unsubscribes of held jobs pass even past the limit: a page dropping many elements at once leaves no stream behind', async () => {
    const jobs = [await live.manual('alice'), await live.manual('alice')];
    const client = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    for (const job of jobs) client.send({ type: 'subscribe', job: job.id });
    await Promise.all(jobs.map((job) => client.next(is('snapshot', job.id), 'snapshot')));
    // The budget of 20 per second used up, as an app switching views uses it.
    for (let i = 0; i < 25; i++) client.send({ type: 'subscribe', ref: `s${i}`, job: `guessed-${i}` });
    for (const job of jobs) client.send({ type: 'unsubscribe', ref: 'last', job: job.id });
    await client.next((m) => m.type === 'error' && m.code === 'BACKJOB_ERR_RATE_LIMITED', 'the budget used up');
    await waitFor(() => (live.hub.stats().subscriptions === 0 ? true : undefined), 'the unsubscribes');
    for (const job of jobs) job.job.log('after the unsubscribe');
    await sleep(300);
    assert.deepEqual(client.messages.filter((m) => m.type === 'events' && m.events.some((e) => e.type === 'job:log')), [], 'nothing sent after the unsubscribe');
    assert.equal(live.hub.stats().subscriptions, 0);
    for (const job of jobs) job.finish();
    await client.close();
  });

  test('cancel: the owner gets canceled and the stream ends canceled; a second cancel is ENDED', async () => {
    const job = await live.manual('alice');
    const client = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    client.send({ type: 'subscribe', job: job.id });
    await client.next(is('snapshot', job.id), 'snapshot');
    client.send({ type: 'cancel', ref: 'c1', job: job.id });
    assert.equal((await client.next(is('canceled', job.id), 'canceled')).ref, 'c1');
    await waitFor(() => client.events(job.id).find((e) => e.type === 'job:canceled'), 'job:canceled event');
    client.send({ type: 'cancel', ref: 'c2', job: job.id });
    const again = await client.next((m): m is Msg<'error'> => m.type === 'error' && m.ref === 'c2', 'second cancel');
    assert.equal(again.code, 'BACKJOB_ERR_ENDED');
    job.finish();
    await client.close();
  });

  test('an unsubscribe that overtakes its subscribe (still being authorized) withdraws it: nothing more comes for that job', async () => {
    const job = await live.manual('alice');
    const fence = await live.manual('alice');
    const client = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    // A slow session store: the unsubscribe is read while the subscribe is still being authorized.
    // (The hub asks the core, not the public object: `live.backjob.authorize` is not on its path.)
    const { host } = live.backjob;
    let authorizing = 0;
    host.authorize = async (id, access) => {
      authorizing++;
      await sleep(100);
      return Object.getPrototypeOf(host).authorize.call(host, id, access);
    };
    try {
      client.send({ type: 'subscribe', job: job.id });
      client.send({ type: 'unsubscribe', job: job.id });
      client.send({ type: 'subscribe', job: fence.id });
      await client.next(is('snapshot', fence.id), 'the fence job, subscribed after the unsubscribe');
    } finally {
      delete (host as { authorize?: unknown }).authorize;
    }
    assert.equal(authorizing, 2, 'both subscribes went through the slow authorization');
    job.job.log('nobody watches this line');
    fence.job.log('fence line');
    await waitFor(() => client.events(fence.id).some((e) => e.type === 'job:log'), 'the fence line');
    assert.deepEqual(
      client.messages.filter((m) => 'job' in m && m.job === job.id).map((m) => m.type),
      [],
      'the withdrawn subscription sent nothing',
    );
    assert.equal(live.hub.stats().subscriptions, 1, 'only the fence subscription is left on the server');
    job.finish();
    fence.finish();
    await client.close();
  });
});

describe('hub streams', () => {
  let live: LiveServer;
  before(async () => {
    live = await LiveServer.start({ backjob: { concurrency: 20, maxLogLines: 100_000 } });
  });
  after(() => live.close());

  test('version 2 packs events, version 1 sends them whole: both read the same, and a client offering both gets 2', async () => {
    const job = await live.manual('alice');
    const headers = { 'x-user': 'alice' };
    const v2 = await TestClient.open(live.url, { headers }, [SUBPROTOCOL, SUBPROTOCOL_V1]);
    const v1 = await TestClient.open(live.url, { headers }, SUBPROTOCOL_V1);
    assert.equal(v2.ws.protocol, SUBPROTOCOL);
    assert.equal((v2.messages[0] as Msg<'hello'>).version, 2);
    assert.equal((v1.messages[0] as Msg<'hello'>).version, 1);
    job.job.log('stored before');
    await job.job.flush();
    for (const client of [v2, v1]) {
      client.send({ type: 'subscribe', job: job.id });
      await client.next(is('snapshot', job.id), 'snapshot');
    }
    job.job.update({ progress: 50, text: 'half' });
    job.job.log('one');
    job.job.log('two');
    job.finish();
    for (const client of [v2, v1]) await waitFor(() => client.events(job.id).some((e) => e.type === 'job:completed'), 'the end');
    assert.deepEqual(v2.events(job.id), v1.events(job.id));
    assert.deepEqual(
      v1.events(job.id).map((e) => [e.type, e.seq, e.jobId]),
      [['job:created', 1, job.id], ['job:start', 2, job.id], ['job:log', 3, job.id], ['job:progress', 4, job.id], ['job:log', 5, job.id], ['job:log', 6, job.id], ['job:completed', 7, job.id]],
    );
    const frames = (client: TestClient) => client.frames.map((f) => JSON.parse(f)).filter((m) => m.type === 'events');
    // Lines of the live commit go as bare strings after the message's seq; version 1's events are whole objects.
    assert.ok(frames(v2).some((m) => typeof m.seq === 'number' && m.events.includes('one') && m.events.includes('two')), JSON.stringify(frames(v2)));
    assert.ok(frames(v1).every((m) => m.seq === undefined && m.events.every((e: unknown) => typeof e === 'object')));
    await v1.close();
    await v2.close();
  });

  test('a snapshot, then the stored events, then live ones, in seq order without gaps', async () => {
    const job = await live.manual('alice');
    for (let i = 0; i < 5; i++) job.job.log(`early ${i}`);
    await job.job.flush();
    const client = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    client.send({ type: 'subscribe', job: job.id });
    const snapshot = await client.next(is('snapshot', job.id), 'snapshot');
    assert.equal(snapshot.snapshot.logLines, 5);
    for (let i = 0; i < 5; i++) job.job.log(`late ${i}`);
    await job.job.flush();
    job.finish();
    await waitFor(() => client.events(job.id).find((e) => e.type === 'job:completed'), 'completion');
    assert.deepEqual(client.lines(job.id), [...[0, 1, 2, 3, 4].map((i) => `early ${i}`), ...[0, 1, 2, 3, 4].map((i) => `late ${i}`)]);
    const seqs = client.events(job.id).map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    assert.equal(new Set(seqs).size, seqs.length);
    assert.ok(client.messages.indexOf(snapshot) < client.messages.findIndex(is('events', job.id)));
    await client.close();
  });

  test('a subscribe reads the job and its first events side by side; lines committed while they are out arrive once, in order', async () => {
    const job = await live.manual('alice');
    job.job.log('before');
    await job.job.flush();
    const host = live.backjob.host;
    const { store } = host.backend;
    const order: string[] = [];
    const eventsAfter = store.eventsAfter;
    store.eventsAfter = function (...args) {
      order.push('events read');
      return eventsAfter.apply(this, args);
    };
    // A slow session store, with the job logging on both sides of the row's read.
    host.authorize = async (id, access) => {
      job.job.log('while authorizing');
      await job.job.flush();
      const found = await Object.getPrototypeOf(host).authorize.call(host, id, access);
      order.push('authorized');
      job.job.log('after the row was read');
      await job.job.flush();
      return found;
    };
    const client = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    try {
      client.send({ type: 'subscribe', job: job.id });
      await client.next(is('snapshot', job.id), 'snapshot');
    } finally {
      delete (host as { authorize?: unknown }).authorize;
      store.eventsAfter = eventsAfter;
    }
    assert.equal(order[0], 'events read', 'the events were read before the row came back, not after');
    job.job.log('live');
    job.finish();
    await waitFor(() => client.events(job.id).some((e) => e.type === 'job:completed'), 'completion');
    assert.deepEqual(client.lines(job.id), ['before', 'while authorizing', 'after the row was read', 'live']);
    const seqs = client.events(job.id).map((e) => e.seq);
    assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), 'every event once, in seq order');
    await client.close();
  });

  test('a resume whose events page was read before a commit the row then shows is no reset: the new line follows', async () => {
    const job = await live.manual('alice');
    job.job.log('seen');
    await job.job.flush();
    const after = (await live.backjob.status(job.id))!.seq;
    const host = live.backjob.host;
    // The page (read as the subscribe begins) finds nothing after `after`; the row, read once this line is stored, is past it.
    host.authorize = async (id, access) => {
      job.job.log('new');
      await job.job.flush();
      return Object.getPrototypeOf(host).authorize.call(host, id, access);
    };
    const client = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    try {
      client.send({ type: 'subscribe', job: job.id, after });
      const snapshot = await client.next(is('snapshot', job.id), 'snapshot');
      assert.equal(snapshot.reset, undefined, 'nothing the client needs is gone');
    } finally {
      delete (host as { authorize?: unknown }).authorize;
    }
    job.finish();
    await waitFor(() => client.events(job.id).some((e) => e.type === 'job:completed'), 'completion');
    assert.deepEqual(client.lines(job.id), ['new']);
    assert.ok(client.events(job.id).every((e) => e.seq > after));
    await client.close();
  });

  test('resuming with after=N gets exactly the events after N, then live ones', async () => {
    const job = await live.manual('alice');
    for (let i = 1; i <= 20; i++) job.job.log(`line ${i}`);
    await job.job.flush();
    const stored = await live.backjob.host.backend.store.eventsAfter(job.id, 0, 1000);
    const resumeAfter = stored.find((e) => e.type === 'job:log' && e.line === 'line 12')!.seq;

    const client = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    client.send({ type: 'subscribe', job: job.id, after: resumeAfter });
    const snapshot = await client.next(is('snapshot', job.id), 'snapshot');
    assert.equal(snapshot.reset, undefined);
    job.job.log('line 21');
    await job.job.flush();
    await waitFor(() => client.lines(job.id).includes('line 21'), 'live line');
    const expected = stored.filter((e) => e.seq > resumeAfter && e.type !== 'job:progress').map((e) => e.seq);
    const received = client.events(job.id).map((e) => e.seq);
    assert.deepEqual(received.slice(0, expected.length), expected);
    assert.deepEqual(client.lines(job.id), ['line 13', 'line 14', 'line 15', 'line 16', 'line 17', 'line 18', 'line 19', 'line 20', 'line 21']);
    job.finish();
    await client.close();
  });

  test('when the history to resume from is gone, a reset snapshot and the whole log follow', async () => {
    const job = await live.manual('alice');
    job.job.log('one');
    job.job.log('two');
    await job.job.flush();
    const client = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    // A seq this job never reached: the client's history is from another store (restored backup, wiped memory backend).
    client.send({ type: 'subscribe', job: job.id, after: 999 });
    const snapshot = await client.next(is('snapshot', job.id), 'snapshot');
    assert.equal(snapshot.reset, true);
    await waitFor(() => client.lines(job.id).length === 2, 'resent log');
    assert.deepEqual(client.lines(job.id), ['one', 'two']);
    assert.equal(client.events(job.id)[0].seq, 1);
    job.finish();
    await client.close();
  });

  test('a paused socket keeps server memory bounded while a job floods, then gets every line in order', async () => {
    // Enough that most of the flood comes after the kernel's buffers and the hub's high-water mark filled.
    const LINES = 80_000;
    const job = await live.manual('alice');
    const client = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    client.send({ type: 'subscribe', job: job.id });
    await client.next(is('snapshot', job.id), 'snapshot');
    client.ws.pause(); // stops reading: the kernel buffers fill, then the hub's

    const pad = 'x'.repeat(200);
    let peakBuffered = 0;
    for (let i = 0; i < LINES; i++) {
      job.job.log(`${i} ${pad}`);
      if (i % 50 === 0) job.job.update(Math.floor((i / LINES) * 100));
      if (i % 1000 === 999) {
        await job.job.flush();
        peakBuffered = Math.max(peakBuffered, live.hub.stats().bufferedBytes);
      }
    }
    job.finish();
    await waitFor(async () => (await live.backjob.status(job.id))?.status === 'completed', 'job to complete');
    // ~20 MB of events went by; the hub held at most its high-water mark plus one page.
    const bound = 1.5 * 1024 * 1024;
    assert.ok(peakBuffered < bound, `buffered ${peakBuffered} bytes`);
    assert.ok(live.hub.stats().maxSocketBufferedBytes < bound, `peak ${live.hub.stats().maxSocketBufferedBytes} bytes`);
    assert.ok(client.lines(job.id).length < LINES, 'the socket was really paused');

    client.ws.resume();
    await waitFor(() => client.events(job.id).some((e) => e.type === 'job:completed'), 'completion after resume', 30_000);
    const lines = client.lines(job.id);
    assert.equal(lines.length, LINES);
    lines.forEach((line, i) => assert.ok(line.startsWith(`${i} `), `line ${i} is ${line.slice(0, 12)}`));
    const progress = client.events(job.id).filter((e): e is Extract<JobEvent, { type: 'job:progress' }> => e.type === 'job:progress');
    assert.ok(progress.length < LINES / 50 / 2, `progress was coalesced (${progress.length} of ${LINES / 50} events)`);
    assert.equal(progress.at(-1)?.progress, 99);
    await client.close();
  });

  test('a socket catching up on many long logs at once is never cut off, and holds about one page past the low-water mark', async () => {
    const JOBS = 15;
    const LINES = 300;
    const jobs = await Promise.all(Array.from({ length: JOBS }, () => live.manual('alice')));
    for (const job of jobs) {
      for (let i = 0; i < LINES; i++) job.job.log(`${i} ${'x'.repeat(2_000)}`);
      await job.job.flush();
    }
    const peakBefore = live.hub.stats().maxSocketBufferedBytes;
    const client = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    // Every subscription starts paging at once: each read completes while the others send.
    for (const job of jobs) client.send({ type: 'subscribe', job: job.id });
    await waitFor(() => jobs.every((job) => client.lines(job.id).length === LINES), 'every line of every job', 30_000);
    assert.equal(client.closeCode, undefined, 'the socket stayed open');
    for (const job of jobs) assert.ok(client.lines(job.id).every((line, i) => line.startsWith(`${i} `)), 'in order, once');
    const peak = live.hub.stats().maxSocketBufferedBytes;
    assert.ok(peak === peakBefore || peak < 1.5 * 1024 * 1024, `peak ${peak} bytes buffered`);
    for (const job of jobs) job.finish();
    await client.close();
  });
});

test('on SQLite, events missing from the store answer a resume with a reset snapshot and what is left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'backjob-hub-'));
  const file = join(dir, 'jobs.db');
  const live = await LiveServer.start({ backjob: { backend: sqlite({ file }) } });
  try {
    const job = await live.manual('alice');
    // One commit each: the store keeps one row per event of a commit's run, and the rows deleted below are single events.
    for (const line of ['one', 'two', 'three', 'four']) {
      job.job.log(line);
      await job.job.flush();
    }
    const logSeqs = (await live.backjob.host.backend.store.eventsAfter(job.id, 0, 100)).filter((e) => e.type === 'job:log').map((e) => e.seq);
    // The events right after the client's resume point are gone (a store restored from an older backup, a manual purge).
    const db = new Database(file);
    db.prepare('DELETE FROM events WHERE job_id = ? AND seq IN (?, ?)').run(job.id, logSeqs[1], logSeqs[2]);
    db.close();

    const client = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    client.send({ type: 'subscribe', job: job.id, after: logSeqs[0] });
    assert.equal((await client.next(is('snapshot', job.id), 'snapshot')).reset, true);
    job.job.log('five');
    await job.job.flush();
    await waitFor(() => client.lines(job.id).includes('five'), 'live line after the reset');
    assert.deepEqual(client.lines(job.id), ['one', 'four', 'five']);
    job.finish();
    await client.close();
  } finally {
    await live.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('hub lifecycle', () => {
  test('close() closes every client with 1001', async () => {
    const live = await LiveServer.start();
    const clients = await Promise.all([TestClient.open(live.url), TestClient.open(live.url)]);
    assert.equal(live.hub.stats().clients, 2);
    await live.hub.close();
    await waitFor(() => clients.every((c) => c.closeCode !== undefined), 'clients to close');
    assert.deepEqual(clients.map((c) => c.closeCode), [1001, 1001]);
    await live.close();
  });

  test('a peer that stops answering pings is terminated', async () => {
    const live = await LiveServer.start({ attach: { heartbeat: 100 } });
    const silent = await TestClient.open(live.url, { autoPong: false });
    const healthy = await TestClient.open(live.url);
    await waitFor(() => silent.closeCode !== undefined, 'silent peer to be cut off');
    assert.equal(healthy.ws.readyState, WebSocket.OPEN);
    await healthy.close();
    await live.close();
  });
});

test('coalesceProgress keeps log and end events and one progress per page with the latest value per field', () => {
  const at = 0;
  const jobId = 'j';
  const events: JobEvent[] = [
    { jobId, at, seq: 2, type: 'job:progress', progress: 5, text: 'folded' },
    { jobId, at, seq: 3, type: 'job:log', line: 'a' },
    { jobId, at, seq: 4, type: 'job:progress', text: 'copying' },
    { jobId, at, seq: 5, type: 'job:log', line: 'b' },
    { jobId, at, seq: 6, type: 'job:progress', progress: 40 },
    { jobId, at, seq: 7, type: 'job:log', line: 'c' },
    { jobId, at, seq: 8, type: 'job:completed' },
  ];
  assert.deepEqual(coalesceProgress(events, 2), [
    events[1],
    events[3],
    { jobId, at, seq: 6, type: 'job:progress', progress: 40, text: 'copying' },
    events[5],
    events[6],
  ]);
  assert.deepEqual(coalesceProgress(events.slice(0, 2), 2), [events[1]]);
});

describe('hub subscription limit', () => {
  let live: LiveServer;
  before(async () => {
    live = await LiveServer.start({ attach: { rateLimit: 1_000_000 } });
  });
  after(() => live.close());

  test('one socket watches up to 1,000 jobs; one more is refused with a final code until another is dropped', async () => {
    // Delayed jobs: they wait, so starting 1,001 of them runs nothing.
    const jobs = [];
    for (let i = 0; i < 1_001; i++) jobs.push(await live.backjob.start({ name: 'manual' }, { delay: 3_600, merge: false }));
    const client = await TestClient.open(live.url);
    for (const [i, job] of jobs.entries()) client.send({ type: 'subscribe', ref: `s${i}`, job: job.id, token: job.token });
    const refusal = await client.next((m): m is Msg<'error'> => m.type === 'error' && m.ref === 's1000', 'the 1,001st refused');
    assert.equal(refusal.code, 'BACKJOB_ERR_TOO_MANY_JOBS');
    await waitFor(() => client.messages.filter((m) => m.type === 'snapshot').length === 1_000, '1,000 snapshots');
    assert.equal(client.messages.filter((m) => m.type === 'error').length, 1);

    client.send({ type: 'unsubscribe', job: jobs[0]!.id });
    client.send({ type: 'subscribe', ref: 'again', job: jobs[1_000]!.id, token: jobs[1_000]!.token });
    await client.next((m) => m.type === 'snapshot' && m.ref === 'again', 'a snapshot once a slot is free');
    await client.close();
  });
});
