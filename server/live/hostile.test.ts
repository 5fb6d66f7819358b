/**
 * What a hostile client can send the live channel, over real sockets: frames
 * built to blow the stack, resets at every step of a handshake, upgrades for
 * paths nobody serves, floods. The server must answer or close, never hang,
 * never leak a file descriptor, and never end the process (node:test fails a
 * test in which an exception goes uncaught).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { readServerMessage, SUBPROTOCOL, parseClientMessage, type ServerMessage } from '../../shared/protocol.js';
import { LiveServer, TestClient, waitFor } from '../testing/live-test-kit.js';

/** `{"type":` then `depth` brackets in and out, then `}`: small, and deep enough to overflow a recursive walk. */
function nested(depth: number): string {
  return `{"type":${'['.repeat(depth)}${']'.repeat(depth)}}`;
}

/** Records exceptions nothing caught while it listens (they would end a real server). */
function catchUncaught(): { errors: unknown[]; stop(): void } {
  const errors: unknown[] = [];
  const record = (error: unknown) => errors.push(error);
  process.on('uncaughtException', record);
  return { errors, stop: () => process.off('uncaughtException', record) };
}

/** A client-to-server text frame (masked, as the protocol requires), for payloads under 126 bytes. */
function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((byte, i) => byte ^ mask[i % 4]!)]);
}

/** Open file descriptors of this process (the server runs in it). */
function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** A raw TCP connection to the server. */
async function raw(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

function upgradeRequest(path: string, headers: Record<string, string> = {}): string {
  const lines = [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Sends an upgrade and resolves with the status line of the answer (or `closed` when the server just closed). */
async function answerTo(port: number, path: string, headers?: Record<string, string>): Promise<string> {
  const socket = await raw(port);
  socket.write(upgradeRequest(path, headers));
  let data = '';
  socket.on('data', (chunk) => (data += chunk));
  await once(socket, 'close');
  return data.split('\r\n')[0] || 'closed';
}

describe('hostile frames', () => {
  let live: LiveServer;
  before(async () => {
    live = await LiveServer.start();
  });
  after(() => live.close());

  test('parseClientMessage never throws, at any nesting a frame can hold', () => {
    for (const depth of [4_200, 30_000, 500_000]) {
      const reply = parseClientMessage(nested(depth));
      assert.equal(reply.type, 'error');
    }
    const deepValue = `{"type":"subscribe","job":"a","token":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    assert.equal(parseClientMessage(deepValue).type, 'error');
  });

  test('a deeply nested frame under the size limit gets an error reply, and the socket still works', async () => {
    const job = await live.manual('alice');
    const client = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    client.send(nested(4_200));
    const reply = await client.next((m) => m.type === 'error', 'the error reply');
    assert.equal(reply.type === 'error' && reply.code, 'BACKJOB_ERR_UNKNOWN_TYPE');
    client.send({ type: 'subscribe', job: job.id });
    await client.next((m) => m.type === 'snapshot', 'a snapshot after it');
    job.finish();
    await client.close();
  });

  test('with a raised maxPayload, the deepest frame it admits is answered too', async () => {
    const roomy = await LiveServer.start({ attach: { maxPayload: 1024 * 1024 } });
    try {
      const client = await TestClient.open(roomy.url);
      client.send(nested(500_000));
      await client.next((m) => m.type === 'error', 'the error reply');
      await client.close();
    } finally {
      await roomy.close();
    }
  });
});

describe('hostile handshakes', () => {
  let live: LiveServer;
  before(async () => {
    live = await LiveServer.start({
      backjob: {
        identify: (req) => {
          if (req.headers['x-user'] === 'explode') throw new Error('session store down');
          return typeof req.headers['x-user'] === 'string' ? req.headers['x-user'] : null;
        },
      },
    });
  });
  after(() => live.close());

  const cases: Array<[string, string, Record<string, string>]> = [
    ['a path the hub does not own', '/anything', {}],
    ['a foreign Origin (403)', '/backjob/ws', { Origin: 'https://evil.example', 'Sec-WebSocket-Protocol': SUBPROTOCOL }],
    ['no subprotocol (400)', '/backjob/ws', {}],
    ['identify throwing (500)', '/backjob/ws', { 'x-user': 'explode', 'Sec-WebSocket-Protocol': SUBPROTOCOL }],
    ['an accepted upgrade (101)', '/backjob/ws', { 'Sec-WebSocket-Protocol': SUBPROTOCOL }],
  ];
  for (const [name, path, headers] of cases) {
    test(`a TCP reset on ${name}, at every step, ends nothing`, async () => {
      const uncaught = catchUncaught();
      try {
        for (const step of ['at once', 'after a pause', 'after more bytes', 'after the answer'] as const) {
          const socket = await raw(live.port);
          socket.write(upgradeRequest(path, headers));
          if (step === 'after a pause') await sleep(50);
          if (step === 'after more bytes') {
            await sleep(20);
            socket.write('more bytes');
            await sleep(20);
          }
          if (step === 'after the answer') await Promise.race([once(socket, 'data'), sleep(200)]);
          socket.resetAndDestroy();
          await sleep(50);
        }
        await sleep(100);
        assert.deepEqual(uncaught.errors.map(String), []);
        // Still serving: a real client gets in.
        const client = await TestClient.open(live.url);
        await client.close();
      } finally {
        uncaught.stop();
      }
    });
  }

  test('upgrades for paths nobody serves, look-alikes included, are answered 404 and closed', async () => {
    for (const path of ['/not-the-hub/1', '/backjob/WS', '/backjob/ws/', '//backjob/ws', '/backjob/wsx', '*']) {
      assert.match(await answerTo(live.port, path), /^HTTP\/1\.1 404/, path);
    }
  });

  test('with another upgrade listener that ignores a path, the upgrade is answered once the header timeout passes', async () => {
    const ignore = () => {};
    live.server.on('upgrade', ignore);
    const timeout = live.server.headersTimeout;
    live.server.headersTimeout = 300;
    try {
      const started = Date.now();
      assert.match(await answerTo(live.port, '/somebody-elses'), /^HTTP\/1\.1 404/);
      assert.ok(Date.now() - started >= 250, 'not before the timeout: the other listener had its chance');
    } finally {
      live.server.off('upgrade', ignore);
      live.server.headersTimeout = timeout;
    }
  });

  test('an upgrade whose identify never answers is refused once the header timeout passes, not held', async () => {
    const stuck = await LiveServer.start({ backjob: { identify: () => new Promise<null>(() => {}) } });
    stuck.server.headersTimeout = 300;
    try {
      const started = Date.now();
      assert.match(await answerTo(stuck.port, '/backjob/ws', { 'Sec-WebSocket-Protocol': SUBPROTOCOL }), /^HTTP\/1\.1 503/);
      assert.ok(Date.now() - started >= 250);
    } finally {
      await stuck.close();
    }
  });

  test('file descriptors stay flat after 1,000 stray upgrades and 1,000 refused ones', async (t) => {
    await answerTo(live.port, '/warm-up');
    const before = openFds();
    for (let round = 0; round < 20; round++) {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          Promise.all([
            answerTo(live.port, `/not-the-hub/${round * 50 + i}`),
            answerTo(live.port, '/backjob/ws', { Origin: 'https://evil.example', 'Sec-WebSocket-Protocol': SUBPROTOCOL }),
          ]),
        ),
      );
    }
    await waitFor(() => (openFds() <= before + 5 ? true : undefined), `fds back near ${before} (now ${openFds()})`);
    t.diagnostic(`fds: ${before} before, ${openFds()} after`);
  });
});

describe('floods', () => {
  let live: LiveServer;
  before(async () => {
    live = await LiveServer.start();
  });
  after(() => live.close());

  test('during a 50,000-frame flood from one socket, another client keeps a round-trip p99 under 50 ms, and the flooder is closed with 1008', async (t) => {
    const job = await live.manual('alice');
    const legit = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
    /** `count` subscribe round trips at a sane pace (inside the rate limit), sorted. */
    const roundTrips = async (count: number, tag: string): Promise<number[]> => {
      const trips: number[] = [];
      for (let i = 0; i < count; i++) {
        const started = performance.now();
        const answered = new Promise<void>((resolve) => {
          const onMessage = (data: Buffer) => {
            const message = readServerMessage(data.toString());
            if (message.type !== 'snapshot' || message.ref !== `${tag}${i}`) return;
            legit.ws.off('message', onMessage);
            resolve();
          };
          legit.ws.on('message', onMessage);
        });
        legit.send({ type: 'subscribe', ref: `${tag}${i}`, job: job.id });
        await answered;
        trips.push(performance.now() - started);
        await sleep(20);
      }
      return trips.sort((a, b) => a - b);
    };
    const p99 = (trips: number[]) => trips[Math.ceil(trips.length * 0.99) - 1]!;
    // The same client without a flood, in the same run: a loaded machine is slower for both.
    const quiet = p99(await roundTrips(50, 'q'));
    // The flooder writes pre-built frames straight onto its TCP socket: sending costs it nothing, as for a real attacker.
    const flooder = await raw(live.port);
    flooder.write(upgradeRequest('/backjob/ws', { 'Sec-WebSocket-Protocol': SUBPROTOCOL }));
    await once(flooder, 'data'); // the 101 and the hello
    let received = Buffer.alloc(0);
    flooder.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
    const frame = maskedTextFrame(JSON.stringify({ type: 'subscribe', job: 'guessed-id-0123' }));
    const sent = 50_000;
    const flood = (async () => {
      for (let i = 0; i < sent && !flooder.destroyed; i += 1_000) {
        flooder.write(Buffer.concat(Array.from({ length: 1_000 }, () => frame)));
        await sleep(1);
      }
    })();

    const trips = await roundTrips(100, 'r');
    await flood;
    const during = p99(trips);
    t.diagnostic(`round trip: p99 ${quiet.toFixed(1)} ms without a flood; during it median ${trips[49]!.toFixed(1)} ms, p99 ${during.toFixed(1)} ms`);
    // A close frame (opcode 8) with code 1008, then the connection ends.
    const close = received.indexOf(Buffer.from([0x88]));
    assert.ok(close !== -1, 'a close frame');
    assert.equal(received.readUInt16BE(close + 2), 1008);
    await waitFor(() => (flooder.destroyed || flooder.readableEnded ? true : undefined), 'the flooder to be cut off');
    // 50 ms on a machine as fast as when quiet; a loaded machine gets the same headroom over its own quiet figure.
    assert.ok(during < Math.max(50, 5 * quiet), `round-trip p99 ${during.toFixed(1)} ms during the flood (${quiet.toFixed(1)} ms without)`);
    job.finish();
    await legit.close();
  });
});
