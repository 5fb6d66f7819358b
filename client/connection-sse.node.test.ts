/**
 * The connection over SSE, against a real server whose upgrades are refused
 * (as a proxy that blocks WebSockets does): `auto` falls back by itself, and
 * everything a watcher sees stays what it is over the WebSocket.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { createSseTransport, type SseTransport } from '../server/live/sse.js';
import { LiveServer, waitFor } from '../server/testing/live-test-kit.js';
import { configureBackjob } from './config.js';
import { SharedConnection, type WebSocketConstructor } from './connection.js';
import type { ListUpdate, WatchUpdate } from './types.js';

const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;

function recorder() {
  const updates: WatchUpdate[] = [];
  const lines = () => updates.flatMap((u) => (u.lines ?? []).map((e) => (e.type === 'job:log' ? e.line : '')));
  return { updates, lines, listener: (u: WatchUpdate) => updates.push(u), last: () => [...updates].reverse().find((u) => u.snapshot)?.snapshot };
}

describe('SharedConnection over SSE', () => {
  let live: LiveServer;
  let sse: SseTransport;
  let server: Server;
  let url: string;
  let upgrades = 0;

  before(async () => {
    live = await LiveServer.start();
    sse = createSseTransport(live.backjob.host, { heartbeat: 200 });
    server = createServer((req, res) => sse.handle(req, res));
    server.on('upgrade', (_req, socket) => {
      upgrades += 1;
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/backjob/ws`;
    // What the page's session cookie is in an app: here a header every HTTP call carries.
    configureBackjob({ headers: { 'x-user': 'alice' }, transport: 'auto' });
  });
  after(async () => {
    configureBackjob({ headers: {}, transport: 'auto' });
    sse.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await live.close();
  });

  const connect = (transport?: 'auto' | 'websocket' | 'sse') =>
    new SharedConnection(url, { WebSocket: NodeWebSocket, idleGrace: 50, minBackoff: 50, maxBackoff: 200, tickets: false, ...(transport ? { transport } : {}) });

  test('auto: sockets refused at the upgrade fall back to SSE; snapshot, lines, cancel and the list all work', async () => {
    const job = await live.manual('alice');
    job.job.log('before');
    await job.job.flush();
    const connection = connect();
    const seen = recorder();
    const unwatch = connection.watch(job.id, undefined, seen.listener);
    await waitFor(() => seen.lines().length === 1, 'the stored line over SSE');
    assert.ok(upgrades >= 2, `the socket was tried first (${upgrades} upgrades)`);
    assert.equal(connection.state, 'open');
    job.job.log('live');
    await waitFor(() => seen.lines().length === 2, 'the live line');
    assert.deepEqual(seen.lines(), ['before', 'live']);

    const listed: ListUpdate[] = [];
    const list = connection.listJobs((u) => listed.push(u));
    const page = await list.page({ limit: 5 });
    assert.ok(page.jobs.some((j) => j.id === job.id));
    await connection.cancel(job.id);
    await waitFor(() => seen.last()?.status === 'canceled', 'canceled');
    list.close();
    unwatch();
    connection.close();
  });

  test('a stream cut mid-job reconnects and resumes after its last seq: every line once, in order', async () => {
    const job = await live.manual('alice');
    const connection = connect('sse');
    const seen = recorder();
    const unwatch = connection.watch(job.id, undefined, seen.listener);
    for (let i = 1; i <= 20; i++) job.job.log(`line ${i}`);
    await waitFor(() => seen.lines().length === 20, '20 lines');
    server.closeAllConnections(); // a proxy restart: the stream is cut
    await waitFor(() => connection.state === 'reconnecting', 'reconnecting');
    for (let i = 21; i <= 40; i++) job.job.log(`line ${i}`);
    await waitFor(() => seen.lines().length === 40, '40 lines', 10_000);
    assert.deepEqual(seen.lines(), Array.from({ length: 40 }, (_, i) => `line ${i + 1}`));
    assert.equal(seen.updates.some((u) => u.reset), false);
    job.finish();
    await waitFor(() => seen.last()?.status === 'completed', 'completed');
    unwatch();
    connection.close();
  });

  test('jobs watched after the stream opened are subscribed by POST, with their tokens', async () => {
    const connection = connect('sse');
    const first = await live.manual('alice');
    const other = await live.manual('bob');
    const a = recorder();
    const b = recorder();
    const stopA = connection.watch(first.id, undefined, a.listener);
    await waitFor(() => a.last(), 'first snapshot');
    const stopB = connection.watch(other.id, other.token, b.listener);
    other.job.log('bob says hi');
    await waitFor(() => b.lines().length === 1, "bob's job, by its token");
    first.finish();
    other.finish();
    stopA();
    stopB();
    connection.close();
  });

  test('websocket only: no fallback, the connection keeps trying the socket', async () => {
    const job = await live.manual('alice');
    const connection = connect('websocket');
    const seen = recorder();
    const before = upgrades;
    const unwatch = connection.watch(job.id, undefined, seen.listener);
    await waitFor(() => upgrades >= before + 3, 'three refused sockets');
    assert.equal(seen.last(), undefined);
    assert.notEqual(connection.state, 'open');
    job.finish();
    unwatch();
    connection.close();
  });

  test('auto, with the server down: a stream that gets no answer at all sends the next attempt back to the WebSocket', async () => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve)); // nothing listens there now
    let sockets = 0;
    class CountingSocket extends (NodeWebSocket as unknown as typeof WebSocket) {
      constructor(address: string, protocols?: string | string[]) {
        sockets += 1;
        super(address, protocols);
      }
    }
    const connection = new SharedConnection(`ws://127.0.0.1:${port}/backjob/ws`, {
      WebSocket: CountingSocket as unknown as WebSocketConstructor,
      minBackoff: 20,
      maxBackoff: 40,
      tickets: false,
    });
    const unwatch = connection.watch('nobody-listens', undefined, () => {});
    // Without the way back, the page would stop at 2 sockets and stream forever.
    await waitFor(() => sockets >= 5, 'the WebSocket tried again after failed streams', 10_000);
    unwatch();
    connection.close();
  });
});
