/**
 * Fuzz: the WebSocket handshake on raw TCP sockets. Each run sends an HTTP
 * upgrade request (or bytes that are none) with a random method and path
 * (the hub's own, look-alikes like `/backjob/WS`, `/backjob/ws/`,
 * `//backjob/ws`, other paths), random Origin, and missing or invalid
 * Connection, Upgrade, Sec-WebSocket-Key, -Version and -Protocol headers, and
 * resets the connection at one step: right after connecting, mid-headers,
 * after the headers, after the answer (101, 400, 403, 404, …), or not at all.
 *
 * Whatever comes, the process stays up (no exception escapes), a complete
 * request gets an answer (101 only on the hub's path, else a 4xx) within the
 * server's own request timeout, the server lets go of the socket, and a
 * fresh legitimate client can still subscribe and get a snapshot.
 *
 * `FUZZ_SEED=<n>` replays a run, `FUZZ_RUNS=<n>` sets the runs (see fuzz-kit.ts).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import fc from 'fast-check';
import { SUBPROTOCOL } from '../../shared/protocol.js';
import { FuzzServer, useFuzzServer, OPCODE, sometimes, ProcessGuard, RawClient, SERVER_TIMEOUTS, checkProperty, encodeFrame, timeoutFor, until, upgradeRequest } from '../testing/fuzz-kit.js';

let fuzz!: FuzzServer;
let guard!: ProcessGuard;
useFuzzServer((server, processGuard) => ((fuzz = server), (guard = processGuard)));

/** A complete request is answered within the server's request timeout, plus room for a slow machine. */
const ANSWER_WITHIN_MS = SERVER_TIMEOUTS.requestTimeout + 1_500;

const STEPS = ['connect', 'mid-headers', 'after-headers', 'after-answer', 'none'] as const;

/** The origin of the server under test, filled in per run (the port is known only then). */
const SAME_ORIGIN = Symbol('same origin');

const header = <T>(values: fc.Arbitrary<T>) => fc.option(values, { freq: 6, nil: undefined });

const handshake = fc.record({
  target: fc.constantFrom('default' as const, 'default' as const, 'large' as const),
  method: fc.oneof({ weight: 8, arbitrary: fc.constant('GET') }, fc.constantFrom('POST', 'HEAD', 'OPTIONS', 'PUT', 'get'), fc.stringMatching(/^[A-Z]{1,10}$/).filter((m) => m !== 'CONNECT')),
  path: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('/backjob/ws', '/backjob/ws?after=1', '/backjob/ws?') },
    { weight: 4, arbitrary: fc.constantFrom('/backjob/WS', '/backjob/ws/', '//backjob/ws', '/backjob//ws', '/backjob/ws%2F', '/Backjob/ws', '/backjob/ws#x', '/backjob/./ws', '/backjob/ws/..', 'http://127.0.0.1/backjob/ws', '*') },
    { weight: 3, arbitrary: fc.oneof(fc.constantFrom('/', '/backjob', '/backjob/jobs', '/not-the-hub'), fc.nat(999).map((n) => `/not-the-hub/${n}`), fc.webPath().map((p) => `/${p.replace(/^\/+/, '')}`)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 30 }) },
  ),
  connection: header(fc.oneof({ weight: 6, arbitrary: fc.constant('Upgrade') }, fc.constantFrom('upgrade', 'keep-alive, Upgrade', 'close', 'keep-alive', ''))),
  upgrade: header(fc.oneof({ weight: 6, arbitrary: fc.constant('websocket') }, fc.constantFrom('WebSocket', 'h2c', 'websocket, h2c', ''))),
  key: header(fc.oneof({ weight: 6, arbitrary: fc.constant('dGhlIHNhbXBsZSBub25jZQ==') }, fc.constantFrom('x', '', 'AAAAAAAAAAAAAAAAAAAAAAAA', 'dGhlIHNhbXBsZSBub25jZQ'), fc.base64String({ maxLength: 40 }))),
  version: header(fc.oneof({ weight: 6, arbitrary: fc.constant('13') }, fc.constantFrom('8', '14', 'abc', '', '13, 8'))),
  protocol: header(fc.oneof({ weight: 6, arbitrary: fc.constant(SUBPROTOCOL) }, fc.constantFrom(`${SUBPROTOCOL}, other`, 'other', 'backjob.v0', 'BACKJOB.V1', '', ',,', ` ${SUBPROTOCOL} `))),
  origin: fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: fc.constant(SAME_ORIGIN) },
    fc.constantFrom('http://evil.example', 'null', 'https://127.0.0.1', 'http://127.0.0.1', 'http://localhost', 'not a url', 'http://127.0.0.1:1'),
    fc.webUrl().map((u) => new URL(u).origin),
  ),
  extra: fc.option(fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,20}$/), fc.string({ unit: 'binary-ascii', maxLength: 40 })), { freq: 3, nil: undefined }),
  /** Random bytes instead of an HTTP request. */
  junk: sometimes(fc.uint8Array({ minLength: 1, maxLength: 200 }), 12),
  step: fc.constantFrom(...STEPS),
  /** Where mid-headers stops, as a fraction of the head. */
  cut: fc.double({ min: 0, max: 0.999, noNaN: true }),
  /** At mid-headers, a FIN instead of a reset. */
  finInstead: fc.boolean(),
  /** Milliseconds between the last write and the reset: gives the server time to reach the step (or not). */
  delayMs: fc.nat(15),
});

type Handshake = typeof handshake extends fc.Arbitrary<infer T> ? T : never;

function requestOf(h: Handshake, port: number): Buffer {
  if (h.junk) return Buffer.from(h.junk);
  const headers: Record<string, string | undefined> = {
    Connection: h.connection,
    Upgrade: h.upgrade,
    'Sec-WebSocket-Key': h.key,
    'Sec-WebSocket-Version': h.version,
    'Sec-WebSocket-Protocol': h.protocol,
    Origin: h.origin === SAME_ORIGIN ? `http://127.0.0.1:${port}` : h.origin,
  };
  if (h.extra) headers[h.extra[0]] = h.extra[1];
  return Buffer.from(upgradeRequest(h.path, port, headers, h.method), 'latin1');
}

/** The path of a request target, without its query (the hub's own comparison). */
function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

async function resetAfter(client: RawClient, delayMs: number): Promise<void> {
  if (delayMs > 0) await sleep(delayMs);
  client.reset();
}

test(
  'no handshake, however malformed or wherever it is reset, ends the process, goes unanswered, or stops the server serving',
  { timeout: timeoutFor(250, 60_000) },
  async (t) => {
    const run = fc.asyncProperty(handshake, async (h) => {
      const mark = guard.mark();
      const wait = async (condition: () => boolean, what: string, timeoutMs = 5_000) => {
        if (await until(condition, timeoutMs, { guard, mark })) return;
        guard.assertNone(mark, `while waiting for ${what}`);
        assert.fail(`Timed out after ${timeoutMs} ms waiting for ${what}`);
      };
      const port = fuzz.portOf(h.target);
      const client = await RawClient.connect(port);
      try {
        await steps(h, client, requestOf(h, port), wait);
        if (!(await fuzz.released(client, { guard, mark }))) {
          guard.assertNone(mark, 'while waiting for the server to let go of the socket');
          assert.fail('Timed out after 5000 ms waiting for the server to let go of the socket');
        }
        guard.assertNone(mark, 'during the run');
        await fuzz.assertStillServes(h.target);
      } catch (failure) {
        // A run that failed waiting still resets its socket, and whatever that reset does belongs to this run.
        client.reset();
        await fuzz.released(client, { guard, mark }, 2_000);
        const escaped = guard.caught.length > mark ? ` (and its reset of the socket let an error escape: ${String(guard.caught[mark].error)})` : '';
        if (failure instanceof Error) failure.message += escaped;
        throw failure;
      }
      client.reset();
      await fuzz.released(client, { guard, mark }, 2_000);
      guard.assertNone(mark, 'after the run');
    });
    await checkProperty(t, run, { runs: 250, runTimeoutMs: 20_000, timeLimitMs: timeoutFor(250, 30_000) });
  },
);

/** Walks the handshake up to the run's step, resets there, and checks the answer of a request sent whole. */
async function steps(h: Handshake, client: RawClient, request: Buffer, wait: (condition: () => boolean, what: string, timeoutMs?: number) => Promise<void>): Promise<void> {
  if (h.step === 'connect') return resetAfter(client, h.delayMs);
  const headEnd = request.indexOf('\r\n\r\n');
  const cut = Math.floor((headEnd === -1 ? request.length : headEnd) * h.cut);
  if (h.step === 'mid-headers') {
    await client.write(request.subarray(0, cut));
    if (!h.finInstead) return resetAfter(client, h.delayMs);
    client.socket.end();
    return wait(() => client.ended, 'the server to close a request cut short by a FIN');
  }
  // Two writes, split mid-headers: the server may see the head in pieces.
  await client.write(request.subarray(0, cut));
  await client.write(request.subarray(cut));
  if (h.step === 'after-headers') return resetAfter(client, h.delayMs);

  const what = h.junk ? 'an answer to bytes that are no HTTP request' : `an answer to ${h.method} ${JSON.stringify(h.path)}`;
  await wait(() => client.head !== undefined || client.ended, what, ANSWER_WITHIN_MS);
  assert.ok(client.head, `the server closed without answering (${what})`);
  const { status, text } = client.head;
  if (status === 101) {
    assert.equal(pathOf(h.path), '/backjob/ws', `101 for ${JSON.stringify(h.path)}: only the hub's own path upgrades`);
    assert.match(text, new RegExp(`\\r\\nSec-WebSocket-Protocol: ${SUBPROTOCOL.replace('.', '\\.')}(\\r\\n|$)`, 'i'), 'the upgrade names the subprotocol');
  } else {
    assert.ok(status >= 200 && status < 500, `answered ${text.split('\r\n')[0]}: a client's malformed upgrade is its fault (4xx), never a 5xx`);
  }

  if (h.step === 'after-answer') return resetAfter(client, h.delayMs);
  if (status === 101) await client.write(encodeFrame({ opcode: OPCODE.close, payload: Buffer.from([0x03, 0xe8]) }));
  client.socket.end();
  await wait(() => client.closed, 'the server to close the connection after our FIN');
}

test('after the fuzzing, no server-side socket is left open', async () => {
  assert.ok(await until(() => fuzz.openSockets() === 0, 5_000), `${fuzz.openSockets()} server-side sockets still open`);
});
