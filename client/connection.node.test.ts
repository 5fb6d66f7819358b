import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { sqlite } from '../server/index.js';
import { LiveServer, userOf, waitFor } from '../server/testing/live-test-kit.js';
import type { BackJobServer as BackJob } from '../server/backjob.js';
import { BackjobConnectionError, SharedConnection, endpointUrl, getConnection, type WebSocketConstructor, type WebSocketLike } from './connection.js';
import type { WatchUpdate } from './types.js';

/** The `ws` client stands in for the browser's WebSocket (Node 20 has none). */
const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;

/** Records what a watcher receives. */
function recorder() {
  const updates: WatchUpdate[] = [];
  const lines = () => updates.flatMap((u) => (u.reset ? [] : (u.lines ?? []).map((e) => (e.type === 'job:log' ? e.line : ''))));
  return { updates, lines, listener: (u: WatchUpdate) => updates.push(u), last: () => [...updates].reverse().find((u) => u.snapshot)?.snapshot };
}

/**
 * The `ws` client behind a switch that holds incoming messages back, as a
 * congested network would: the test decides when what the server already
 * sent reaches the connection.
 */
function holdableSockets() {
  let holding = false;
  const held: Array<() => void> = [];
  /** Every message received, held or not, in order. */
  const received: string[] = [];
  class HoldableSocket implements WebSocketLike {
    onopen: WebSocketLike['onopen'] = null;
    onmessage: WebSocketLike['onmessage'] = null;
    onclose: WebSocketLike['onclose'] = null;
    onerror: WebSocketLike['onerror'] = null;
    private readonly inner: WebSocket;
    constructor(url: string, protocols?: string | string[]) {
      this.inner = new WebSocket(url, protocols);
      this.inner.onopen = (event) => this.onopen?.(event);
      this.inner.onclose = (event) => this.onclose?.(event);
      this.inner.onerror = (event) => this.onerror?.(event);
      this.inner.onmessage = (event) => {
        received.push(String(event.data));
        const deliver = () => this.onmessage?.({ data: String(event.data) });
        if (holding) held.push(deliver);
        else deliver();
      };
    }
    get readyState() {
      return this.inner.readyState;
    }
    send(data: string) {
      this.inner.send(data);
    }
    close(code?: number, reason?: string) {
      this.inner.close(code, reason);
    }
  }
  return {
    WebSocket: HoldableSocket as WebSocketConstructor,
    received,
    hold: () => (holding = true),
    release: () => {
      holding = false;
      for (const deliver of held.splice(0)) deliver();
    },
  };
}

describe('SharedConnection', () => {
  let live: LiveServer;
  before(async () => {
    live = await LiveServer.start({ backjob: { concurrency: 20 } });
  });
  after(() => live.close());

  const connect = () => new SharedConnection(live.url, { WebSocket: NodeWebSocket, idleGrace: 50, minBackoff: 50, maxBackoff: 400 });

  test('two watchers share one socket, and a late watcher gets the full history then only new lines', async () => {
    const a = await live.manual();
    const b = await live.manual();
    const connection = connect();
    const first = recorder();
    const other = recorder();
    const stopFirst = connection.watch(a.id, a.token, first.listener);
    const stopOther = connection.watch(b.id, b.token, other.listener);
    a.job.log('a1');
    a.job.log('a2');
    b.job.log('b1');
    await waitFor(() => first.lines().length === 2 && other.lines().length === 1, 'lines');
    assert.equal(live.hub.stats().clients, 1);
    assert.equal(live.hub.stats().subscriptions, 2);

    const late = recorder();
    const stopLate = connection.watch(a.id, a.token, late.listener);
    await waitFor(() => late.updates.length > 0, 'initial delivery');
    assert.deepEqual(late.lines(), ['a1', 'a2']);
    assert.equal(late.updates[0].snapshot?.logLines, 2);
    assert.equal(late.updates[0].connection, 'open');
    a.job.log('a3');
    a.finish();
    await waitFor(() => late.last()?.status === 'completed' && first.last()?.status === 'completed', 'completion');
    assert.deepEqual(first.lines(), ['a1', 'a2', 'a3']);
    assert.deepEqual(late.lines(), ['a1', 'a2', 'a3']);
    assert.equal(live.hub.stats().clients, 1);
    stopFirst();
    stopLate();
    stopOther();
    b.finish();
    connection.close();
  });

  test("the server's hello carries its clock, and the connection learns the offset from it", async () => {
    const sockets = holdableSockets();
    const connection = new SharedConnection(live.url, { WebSocket: sockets.WebSocket, idleGrace: 50 });
    assert.equal(connection.clockOffset, 0, 'nothing known before the socket opens');
    const a = await live.manual();
    const before = Date.now();
    const stop = connection.watch(a.id, a.token, () => {});
    await waitFor(() => connection.state === 'open' && live.hub.stats().subscriptions === 1, 'the subscription');
    const hello = JSON.parse(sockets.received[0]) as { type: string; time?: number };
    assert.equal(hello.type, 'hello');
    assert.equal(typeof hello.time, 'number', 'the hello says the server time');
    assert.ok(hello.time! >= before && hello.time! <= Date.now(), 'the server time, on the same machine');
    // Same machine, same clock: the offset is about the time the hello took to arrive.
    assert.ok(Math.abs(connection.clockOffset) < 1_000, `offset ${connection.clockOffset}`);
    stop();
    a.finish();
    connection.close();
  });

  test('the socket closes once nobody watches, and opens again for the next watcher', async () => {
    const job = await live.manual();
    const connection = connect();
    const stop = connection.watch(job.id, job.token, () => {});
    await waitFor(() => connection.state === 'open' && live.hub.stats().clients === 1, 'open');
    stop();
    stop(); // idempotent
    await waitFor(() => connection.state === 'closed' && live.hub.stats().clients === 0, 'closed after the grace period');
    const seen = recorder();
    const stopAgain = connection.watch(job.id, job.token, seen.listener);
    await waitFor(() => seen.last()?.id === job.id, 'snapshot on a fresh socket');
    assert.equal(live.hub.stats().clients, 1);
    stopAgain();
    job.finish();
    await waitFor(() => live.hub.stats().clients === 0, 'closed again');
  });

  test('the socket opens again for the next watcher when the last one left during an outage', async () => {
    const job = await live.manual();
    // The reconnect delay (0.5-1 s) outlasts the idle grace: the idle close drops a pending reconnect.
    const connection = new SharedConnection(live.url, { WebSocket: NodeWebSocket, idleGrace: 50, minBackoff: 1_000, maxBackoff: 1_000 });
    const stop = connection.watch(job.id, job.token, () => {});
    await waitFor(() => connection.state === 'open', 'open');
    await live.stopListening();
    await waitFor(() => connection.state === 'reconnecting', 'a reconnect scheduled');
    stop(); // the page leaves the job's view while the server is away
    await waitFor(() => connection.state === 'closed', 'closed after the idle grace');
    await live.listen();

    const next = await live.manual();
    const seen = recorder();
    const stopNext = connection.watch(next.id, next.token, seen.listener);
    await waitFor(() => seen.last()?.id === next.id, 'the next watch goes live', 5_000);
    stopNext();
    job.finish();
    next.finish();
    connection.close();
  });

  test('a refused watch reports NOT_FOUND; cancel resolves for the owner and rejects for a stranger', async () => {
    const job = await live.manual('alice');
    const connection = connect();
    const stranger = recorder();
    const stop = connection.watch(job.id, undefined, stranger.listener);
    const refusal = await waitFor(() => stranger.updates.find((u) => u.error), 'refusal');
    assert.equal(refusal.error?.code, 'BACKJOB_ERR_NOT_FOUND');
    await assert.rejects(connection.cancel(job.id), (error: BackjobConnectionError) => error.code === 'BACKJOB_ERR_NOT_FOUND');

    // The watch token is enough, for watching and for cancelling.
    const holder = recorder();
    const stopHolder = connection.watch(job.id, job.token, holder.listener);
    await waitFor(() => holder.last()?.status === 'running', 'watching with the token');
    await connection.cancel(job.id, job.token);
    await waitFor(() => holder.last()?.status === 'canceled', 'canceled state');
    stop();
    stopHolder();
    job.finish();
    connection.close();
  });

  test('a watcher with the token, arriving before a tokenless watcher of the same job was refused, gets the job', async () => {
    const other = await live.manual();
    const job = await live.manual('alice'); // the page's visitor is anonymous; the page has the token from start()
    const connection = connect();
    const stopOther = connection.watch(other.id, other.token, () => {});
    await waitFor(() => connection.state === 'open', 'open');

    try {
      const tokenless = recorder();
      const holder = recorder();
      connection.watch(job.id, undefined, tokenless.listener); // a <backjob-log job-id=…> without token
      connection.watch(job.id, job.token, holder.listener); // a <backjob-progress> with it, in the same task
      job.job.log('hello');
      await waitFor(() => holder.lines().length === 1 && tokenless.lines().length === 1, 'the line, for both watchers', 5_000);
      assert.equal(holder.last()?.status, 'running');
      assert.ok(!holder.updates.some((u) => u.error), 'no refusal reached the token holder');
    } finally {
      stopOther();
      job.finish();
      other.finish();
      connection.close();
    }
  });

  test('a subscription the server failed (BACKJOB_ERR_INTERNAL) is asked for again and resumes without a gap', async () => {
    const job = await live.manual();
    job.job.log('first');
    await job.job.flush();
    // One transient store failure (a SQLite BUSY, a Redis blip) while the hub reads this job's events.
    const store = live.backjob.host.backend.store;
    const eventsAfter = store.eventsAfter;
    let failures = 1;
    store.eventsAfter = (jobId, ...rest) => {
      if (jobId === job.id && failures-- > 0) return Promise.reject(new Error('database is locked'));
      return eventsAfter.call(store, jobId, ...rest);
    };
    const connection = connect();
    try {
      const seen = recorder();
      connection.watch(job.id, job.token, seen.listener);
      await waitFor(() => failures < 0 && seen.lines().length === 1, 'the failure, then the first line from a new subscription', 5_000);
      job.job.log('second');
      job.finish();
      await waitFor(() => seen.last()?.status === 'completed', 'completion', 5_000);
      assert.deepEqual(seen.lines(), ['first', 'second']);
      assert.ok(!seen.updates.some((u) => u.error), 'a transient failure is not shown as a refusal');
    } finally {
      store.eventsAfter = eventsAfter;
      job.finish();
      connection.close();
    }
  });

  test("a job unwatched and watched again at once: the old subscription's late events leave no gap in the new one", async () => {
    const job = await live.manual();
    const sockets = holdableSockets();
    const connection = new SharedConnection(live.url, { WebSocket: sockets.WebSocket, idleGrace: 50 });
    const first = recorder();
    const stopFirst = connection.watch(job.id, job.token, first.listener);
    for (const line of ['l1', 'l2', 'l3']) job.job.log(line);
    await waitFor(() => first.lines().length === 3, 'the first lines');

    // A line the server sends to the first subscription, still on its way when
    // a framework swaps the only element for a new one.
    sockets.hold();
    job.job.log('l4');
    await waitFor(() => sockets.received.some((m) => m.includes('"l4"')), 'l4 sent under the first subscription');
    stopFirst();
    const second = recorder();
    const stopSecond = connection.watch(job.id, job.token, second.listener);
    sockets.release();

    job.job.log('l5');
    job.finish();
    await waitFor(() => second.last()?.status === 'completed', 'completion');
    assert.deepEqual(second.lines(), ['l1', 'l2', 'l3', 'l4', 'l5']);
    stopSecond();
    connection.close();
  });

  test('a server restart mid-job loses and doubles no line', async () => {
    const job = await live.manual();
    const connection = connect();
    const seen = recorder();
    const states: string[] = [];
    const stop = connection.watch(job.id, job.token, (u) => {
      seen.listener(u);
      if (u.connection) states.push(u.connection);
    });
    for (let i = 0; i < 50; i++) job.job.log(`before ${i}`);
    await waitFor(() => seen.lines().length === 50, 'lines before the restart');

    await live.stopListening();
    // The job keeps going while nobody can watch it.
    for (let i = 0; i < 50; i++) job.job.log(`during ${i}`);
    await job.job.flush();
    await waitFor(() => connection.state === 'reconnecting', 'reconnecting');
    await live.listen();
    for (let i = 0; i < 50; i++) job.job.log(`after ${i}`);
    job.finish();

    await waitFor(() => seen.last()?.status === 'completed', 'completion after the restart');
    const expected = ['before', 'during', 'after'].flatMap((phase) => Array.from({ length: 50 }, (_, i) => `${phase} ${i}`));
    assert.deepEqual(seen.lines(), expected);
    assert.ok(states.includes('reconnecting') && states.at(-1) === 'open', `states ${states.join(',')}`);
    stop();
    connection.close();
  });
});

test('a watcher with the token of a refused job, added while the socket reconnects, waits for the socket and gets the job', async () => {
  // identify() reads a session store: each handshake stays CONNECTING for a while.
  const slowIdentify = async (req: IncomingMessage) => (await new Promise((resolve) => setTimeout(resolve, 300)), userOf(req));
  const live = await LiveServer.start({ backjob: { identify: slowIdentify } });
  const sockets: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  const connection = new SharedConnection(live.url, { WebSocket: Tracked as unknown as WebSocketConstructor, minBackoff: 50, maxBackoff: 400 });
  const job = await live.manual('alice');
  try {
    const stranger = recorder();
    connection.watch(job.id, undefined, stranger.listener);
    await waitFor(() => stranger.updates.find((u) => u.error), 'the refusal');

    await live.stopListening(); // a server restart
    await live.listen();
    await waitFor(() => sockets.at(-1)?.readyState === WebSocket.CONNECTING && connection.state === 'reconnecting', 'a reconnect in its handshake');
    const holder = recorder();
    connection.watch(job.id, job.token, holder.listener); // threw while the socket was CONNECTING
    await waitFor(() => holder.last()?.status === 'running', 'the job, once the socket opened');
  } finally {
    connection.close();
    job.finish();
    await live.close();
  }
});

test('a whole-process restart on SQLite mid-job (the job re-runs after recovery) loses and doubles no line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'backjob-connection-'));
  const file = join(dir, 'jobs.db');
  const define = (backjob: BackJob) =>
    backjob.define(
      'steps',
      async (job) => {
        for (let i = 0; i < 30; i++) {
          job.signal.throwIfAborted();
          job.log(`line ${i}`);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      },
      { retries: 1 },
    );
  const options = { backjob: { backend: sqlite({ file }) }, define };
  let live = await LiveServer.start(options);
  const connection = new SharedConnection(live.url, { WebSocket: NodeWebSocket, minBackoff: 50, maxBackoff: 400 });
  try {
    const { id, token } = await live.backjob.start({ name: 'steps' });
    const seen = recorder();
    const stop = connection.watch(id, token, seen.listener);
    await waitFor(() => seen.lines().length >= 5, 'some lines before the restart');
    await live.stopListening();
    await live.backjob.close(); // the handler is cut off mid-run and left for recovery
    live = await LiveServer.start({ ...options, backjob: { backend: sqlite({ file }) }, port: live.port });

    await waitFor(() => seen.last()?.status === 'completed', 'completion after the restart', 30_000);
    const stored = (await live.backjob.host.backend.store.eventsAfter(id, 0, 10_000)).flatMap((e) => (e.type === 'job:log' ? [e.line] : []));
    assert.ok(stored.length > 30, 'the job ran twice');
    assert.deepEqual(seen.lines(), stored);
    assert.equal(seen.last()?.attempt, 2);
    stop();
  } finally {
    connection.close();
    await live.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A socket that opens at once and says hello with `time` (or without it, when undefined). */
function helloSocket(time: number | undefined): WebSocketConstructor {
  return class implements WebSocketLike {
    readyState = 0;
    onopen: WebSocketLike['onopen'] = null;
    onmessage: WebSocketLike['onmessage'] = null;
    onclose: WebSocketLike['onclose'] = null;
    onerror: WebSocketLike['onerror'] = null;
    constructor() {
      setTimeout(() => {
        this.readyState = 1;
        this.onopen?.({});
        this.onmessage?.({ data: JSON.stringify(time === undefined ? { type: 'hello', version: 1 } : { type: 'hello', version: 1, time }) });
      });
    }
    send() {}
    close() {}
  };
}

test("the clock offset is the server's hello time minus the browser's clock; 0 from a server that does not send it", async () => {
  const ahead = new SharedConnection('ws://127.0.0.1:1/backjob/ws', { WebSocket: helloSocket(Date.now() + 120_000) });
  ahead.watch('j', undefined, () => {});
  await waitFor(() => ahead.state === 'open', 'the socket');
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(Math.abs(ahead.clockOffset - 120_000) < 1_000, `offset ${ahead.clockOffset}`);
  ahead.close();

  const older = new SharedConnection('ws://127.0.0.1:1/backjob/ws', { WebSocket: helloSocket(undefined) });
  older.watch('j', undefined, () => {});
  await waitFor(() => older.state === 'open', 'the socket');
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(older.clockOffset, 0);
  older.close();
});

test('importing in Node works; getConnection needs an absolute URL outside a browser and shares per endpoint', () => {
  assert.throws(() => getConnection(), TypeError);
  assert.equal(endpointUrl('https://example.com/backjob/ws'), 'wss://example.com/backjob/ws');
  assert.equal(endpointUrl('ws://127.0.0.1:1/backjob/ws'), 'ws://127.0.0.1:1/backjob/ws');
  const withLocation = globalThis as { location?: { href: string } };
  withLocation.location = { href: 'https://app.example/page' };
  try {
    assert.equal(endpointUrl(), 'wss://app.example/backjob/ws');
    assert.equal(endpointUrl('/jobs/ws'), 'wss://app.example/jobs/ws');
  } finally {
    delete withLocation.location;
  }
});

test('a page watching 40 jobs on a server with a lower rate limit (10/s) stays within it on its first socket: no frame dropped, no 1008', async () => {
  const live = await LiveServer.start({ attach: { rateLimit: 10 }, define: (backjob) => backjob.define('noop', async () => {}) });
  const sockets: WebSocket[] = [];
  const closes: number[] = [];
  class Tracked extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
      this.on('close', (code) => closes.push(code));
    }
  }
  const connection = new SharedConnection(live.url, { WebSocket: Tracked as unknown as WebSocketConstructor, minBackoff: 50, maxBackoff: 400 });
  try {
    const jobs = await Promise.all(Array.from({ length: 40 }, () => live.backjob.start({ name: 'noop' }, { merge: false })));
    const seen = jobs.map(() => recorder());
    jobs.forEach(({ id, token }, i) => connection.watch(id, token, seen[i]!.listener));
    await waitFor(() => seen.every((r) => r.last()), 'a snapshot for every job', 20_000);
    assert.deepEqual(closes, [], 'no socket was closed');
    assert.equal(sockets.length, 1, 'one socket');
    assert.ok(seen.every((r) => !r.updates.some((u) => u.error)), 'no watcher saw an error');
  } finally {
    connection.close();
    await live.close();
  }
});
