/**
 * Test support for the fuzz suites: the seed and run count from the
 * environment, a guard that turns an uncaught exception anywhere in the
 * process into a failing run, a BackJob served the way an app serves it
 * (Express router and live channel on real ports), and a raw WebSocket
 * client that writes any bytes it is told to and records every frame the
 * server sends back.
 *
 * - `FUZZ_SEED=<integer>` replays a run (every property prints its seed);
 *   without it each run draws a fresh seed.
 * - `FUZZ_RUNS=<n>` runs each property n times instead of its default
 *   (chosen so the whole fuzz suite stays well under a minute on 2 cores);
 *   test timeouts grow with it.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, type TestContext } from 'node:test';
import express from 'express';
import fc from 'fast-check';
import WebSocket from 'ws';
import { readServerMessage, SUBPROTOCOL, type ServerMessage } from '../../shared/protocol.js';
import { createBackJob, memory } from '../index.js';
import type { BackJob } from '../types.js';

// ───────────────────────────── seed and runs ─────────────────────────────

function integerFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) throw new TypeError(`Expected ${name} to be an integer, got \`${raw}\``);
  return value;
}

/** The seed every property of this process uses: `FUZZ_SEED`, or a fresh one. */
export const FUZZ_SEED = integerFromEnv('FUZZ_SEED') ?? Math.floor(Math.random() * 0x7fffffff);
const FUZZ_RUNS = integerFromEnv('FUZZ_RUNS');

/** Runs of a property: `FUZZ_RUNS` when set, else the property's default. */
export function runsFor(defaultRuns: number): number {
  return FUZZ_RUNS ?? defaultRuns;
}

/** A test timeout that grows with `FUZZ_RUNS`: `baseMs` covers the default runs. */
export function timeoutFor(defaultRuns: number, baseMs: number): number {
  return Math.ceil(baseMs * Math.max(1, runsFor(defaultRuns) / defaultRuns));
}

/**
 * Checks a property with the suite's seed and run count. The seed is printed
 * before the first run (a hang that ends in a test timeout can still be
 * replayed); on failure fast-check's report (seed, path, shrunk
 * counterexample, the error) is the failure's message. Each run is bounded by
 * `runTimeoutMs`; the whole check, shrinking included, by `timeLimitMs`: past
 * it a failure is reported with the smallest counterexample found so far,
 * and a property that found none says how many runs it got through.
 */
export async function checkProperty<Ts extends [unknown, ...unknown[]]>(
  t: TestContext,
  property: fc.IAsyncProperty<Ts> | fc.IProperty<Ts>,
  options: { runs: number; runTimeoutMs?: number; timeLimitMs?: number },
): Promise<void> {
  const numRuns = runsFor(options.runs);
  // Also on stderr at once: a run that blocks the event loop never gets to print its diagnostics.
  process.stderr.write(`${t.name}: FUZZ_SEED=${FUZZ_SEED} FUZZ_RUNS=${numRuns}\n`);
  t.diagnostic(`FUZZ_SEED=${FUZZ_SEED} FUZZ_RUNS=${numRuns}`);
  const started = performance.now();
  const plugins = [fc.timeout(options.runTimeoutMs ?? 15_000)];
  if (options.timeLimitMs !== undefined) plugins.push(fc.interruptAfterTimeLimit(options.timeLimitMs));
  const details = await fc.check(property as fc.IAsyncProperty<Ts>, { seed: FUZZ_SEED, numRuns, plugins });
  const ms = Math.round(performance.now() - started);
  if (details.failed) {
    const report = fc.defaultReportMessage(details) ?? `Property failed (seed ${FUZZ_SEED})`;
    const error = details.errorInstance;
    const got = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    // Bounded: the test runner's reporter chokes on a counterexample of many kilobytes, and the seed replays it anyway.
    const shown = report.replace(/\n\nHint: .*$/s, '').replace(/^(Counterexample: .{1500}).+$/m, '$1… (cut; replay the seed for all of it)');
    throw new Error(`${shown}\nGot ${got.slice(0, 3_000)}`);
  }
  t.diagnostic(details.interrupted ? `interrupted after ${details.numRuns} of ${numRuns} runs (${ms} ms)` : `${details.numRuns} runs in ${ms} ms`);
}

// ───────────────────────────── process guard ─────────────────────────────

/** What the guard caught: the event and the error. */
export interface Escaped {
  event: 'uncaughtException' | 'unhandledRejection';
  error: unknown;
}

/**
 * Records every uncaught exception and unhandled rejection of the process
 * while it is installed. A fuzz run takes a mark before it starts, races its
 * waits against {@link ProcessGuard.escaped}, and calls
 * {@link ProcessGuard.assertNone} at the end: an exception that escaped a
 * socket or ws listener fails that very run (with its counterexample)
 * instead of ending the process or going unnoticed.
 */
export class ProcessGuard {
  readonly caught: Escaped[] = [];
  private readonly waiting = new Set<() => void>();
  private readonly onException = (error: unknown) => this.record({ event: 'uncaughtException', error });
  private readonly onRejection = (error: unknown) => this.record({ event: 'unhandledRejection', error });

  constructor() {
    process.on('uncaughtException', this.onException);
    process.on('unhandledRejection', this.onRejection);
  }

  private record(escaped: Escaped): void {
    this.caught.push(escaped);
    for (const wake of this.waiting) wake();
  }

  /** A position in the record: what a run compares with at its end. */
  mark(): number {
    return this.caught.length;
  }

  /** Resolves once something escaped after `mark` (never rejects): for racing a run's waits against. */
  escaped(mark: number): { promise: Promise<void>; cancel(): void } {
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => (wake = resolve));
    if (this.caught.length > mark) wake();
    else this.waiting.add(wake);
    return { promise, cancel: () => this.waiting.delete(wake) };
  }

  /** Throws (failing the run) when anything escaped since `mark`, with the first error's stack. */
  assertNone(mark: number, during: string): void {
    const escaped = this.caught.slice(mark);
    if (escaped.length === 0) return;
    const [{ event, error }] = escaped;
    const detail = error instanceof Error ? (error.stack ?? String(error)).split('\n').slice(0, 8).join('\n') : String(error);
    assert.fail(`${escaped.length} error(s) escaped to the process (${event}) ${during}; the first:\n${detail}`);
  }

  dispose(): void {
    process.off('uncaughtException', this.onException);
    process.off('unhandledRejection', this.onRejection);
    for (const wake of this.waiting) wake();
    this.waiting.clear();
  }
}

// ───────────────────────────── waiting ─────────────────────────────

/** Fires whenever a raw client or a tracked server socket gets data or closes: what {@link until} re-checks on. */
const changes = new EventEmitter().setMaxListeners(0);
const changed = () => changes.emit('change');

/**
 * Resolves true once `condition()` holds, re-checked whenever a socket the
 * kit watches changes (and every 20 ms), or false after `timeoutMs` or once the guard saw an
 * escaped error: a run never waits past a crash.
 */
export async function until(condition: () => boolean, timeoutMs: number, guard?: { guard: ProcessGuard; mark: number }): Promise<boolean> {
  if (condition()) return true;
  const escaped = guard?.guard.escaped(guard.mark);
  let timer: NodeJS.Timeout | undefined;
  let poll: NodeJS.Timeout | undefined;
  let check: (() => void) | undefined;
  try {
    return await Promise.race([
      new Promise<boolean>((resolve) => {
        check = () => condition() && resolve(true);
        changes.on('change', check);
        poll = setInterval(check, 20);
      }),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(condition()), timeoutMs))),
      ...(escaped ? [escaped.promise.then(() => condition())] : []),
    ]);
  } finally {
    clearTimeout(timer);
    clearInterval(poll);
    if (check) changes.off('change', check);
    escaped?.cancel();
  }
}

/** Resolves with `promise`'s value, or rejects saying what timed out. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`Timed out after ${timeoutMs} ms: ${what}`)), timeoutMs))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// ───────────────────────────── the server under fuzz ─────────────────────────────

/** A job the fuzzers may name (and a legitimate client watches). */
export interface KnownJob {
  id: string;
  token: string;
}

/**
 * Short request timeouts, checked often, so a stalled request is closed by
 * the server well inside a test's bounds (Node's defaults: 5 minutes, checked
 * every 30 s).
 */
export const SERVER_TIMEOUTS = { headersTimeout: 1_000, requestTimeout: 2_000, connectionsCheckingInterval: 100 } as const;

/** The user a request speaks for: the `x-user` header (what a session is in an app), or nobody. */
function userOf(req: { headers: Record<string, string | string[] | undefined> }): string | null {
  const user = req.headers['x-user'];
  return typeof user === 'string' && user.length > 0 ? user : null;
}

/**
 * A BackJob embedded as an app embeds it: an Express app with
 * `backjob.router()` behind `http.createServer` on port 0 with
 * `backjob.attach(server)`, and a second server whose live channel takes
 * frames up to 64 KiB (an app that raised `maxPayload`). Every server-side
 * socket is tracked by its peer's port, so a run can wait until the server
 * let go of the socket it used.
 */
/**
 * Registers the file's hooks: a process guard and a {@link FuzzServer}
 * before its tests, both disposed of after them (then `cleanup`, if given).
 * `ready` receives them.
 */
export function useFuzzServer(ready: (fuzz: FuzzServer, guard: ProcessGuard) => void, cleanup?: () => void): void {
  let fuzz: FuzzServer | undefined;
  let guard: ProcessGuard | undefined;
  before(async () => {
    guard = new ProcessGuard();
    fuzz = await FuzzServer.start();
    ready(fuzz, guard);
  });
  after(
    async () => {
      cleanup?.();
      try {
        await fuzz?.close();
      } finally {
        guard?.dispose();
      }
    },
    { timeout: 30_000 },
  );
}

export class FuzzServer {
  /** The default server: HTTP API and live channel with default limits. */
  server!: Server;
  /** Live channel only, `maxPayload` 64 KiB. */
  large!: Server;
  /** A waiting job (cancelable), a completed one. */
  readonly jobs: KnownJob[] = [];
  private readonly sockets = new Map<number, { at: number; socket: Socket; closed: boolean }>();
  private releaseHeld!: () => void;
  private readonly held = new Promise<void>((resolve) => (this.releaseHeld = resolve));

  private constructor(readonly backjob: BackJob) {}

  static async start(): Promise<FuzzServer> {
    const backjob = createBackJob({ backend: memory(), key: 'fuzz-test-key-0123456789abcdef', identify: userOf, routes: ['/fuzz/*'] });
    const fuzz = new FuzzServer(backjob);
    backjob.define('fuzz/hold', (job) => Promise.race([fuzz.held, new Promise((resolve) => job.signal.addEventListener('abort', resolve))]).then(() => 'held'));
    backjob.define('fuzz/echo', (_job, params) => params, { launchable: true });
    await backjob.ready;

    const app = express();
    app.use(backjob.router());
    app.all('/fuzz/*path', (_req, res) => res.json({ ok: true }));
    fuzz.server = await fuzz.listen(createServer(SERVER_TIMEOUTS, app));
    backjob.attach(fuzz.server);
    fuzz.large = await fuzz.listen(createServer(SERVER_TIMEOUTS, (_req, res) => res.writeHead(404).end()));
    backjob.attach(fuzz.large, { maxPayload: 64 * 1024 });

    for (const name of ['fuzz/hold', 'fuzz/echo']) {
      const { id, token } = await backjob.start({ name }, { merge: false });
      fuzz.jobs.push({ id, token });
    }
    return fuzz;
  }

  private async listen(server: Server): Promise<Server> {
    server.on('connection', (socket: Socket) => {
      const entry = { at: performance.now(), socket, closed: false };
      if (socket.remotePort === undefined) return; // reset before Node looked at it: nothing of ours can touch it
      this.sockets.set(socket.remotePort, entry);
      socket.once('close', () => {
        entry.closed = true;
        setImmediate(changed);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return server;
  }

  portOf(target: 'default' | 'large'): number {
    return ((target === 'default' ? this.server : this.large).address() as AddressInfo).port;
  }

  /** The server side of the client socket bound to `localPort` that connected after `since`, if the server accepted it. */
  serverSocket(localPort: number, since: number): { socket: Socket; closed: boolean } | undefined {
    const entry = this.sockets.get(localPort);
    return entry && entry.at >= since ? entry : undefined;
  }

  /**
   * Waits until the server closed its side of `client`'s connection, so
   * that whatever the server does with the socket (an error a reset raises
   * included) happens within the run that made it. A connection reset before
   * the server accepted it may never show up: after `unseenMs` that counts
   * as released.
   */
  async released(client: RawClient, guard: { guard: ProcessGuard; mark: number }, timeoutMs = 5_000, unseenMs = 1_000): Promise<boolean> {
    const seen = await until(() => this.serverSocket(client.port, client.startedAt) !== undefined, unseenMs, guard);
    if (!seen) return true;
    return until(() => this.serverSocket(client.port, client.startedAt)?.closed ?? true, timeoutMs, guard);
  }

  /** Open server-side sockets, of both servers. */
  openSockets(): number {
    return [...this.sockets.values()].filter((s) => !s.closed).length;
  }

  /**
   * Whether the server still serves: a fresh client with the right
   * subprotocol gets `hello`, subscribes to a known job and gets its snapshot.
   */
  async assertStillServes(target: 'default' | 'large' = 'default'): Promise<void> {
    const { id, token } = this.jobs[0];
    const ws = new WebSocket(`ws://127.0.0.1:${this.portOf(target)}/backjob/ws`, SUBPROTOCOL);
    const messages: ServerMessage[] = [];
    ws.on('message', (data) => messages.push(readServerMessage(data.toString())));
    ws.on('error', () => {});
    try {
      await within(once(ws, 'open'), 5_000, 'a legitimate client to open its socket after the run');
      ws.send(JSON.stringify({ type: 'subscribe', ref: 'legit', job: id, token }));
      const answered = await until(() => messages.some((m) => m.type === 'snapshot' && m.ref === 'legit'), 5_000);
      assert.ok(answered, `a legitimate client got no snapshot after the run; it got ${JSON.stringify(messages).slice(0, 500)}`);
    } finally {
      ws.terminate();
    }
  }

  /**
   * Closes BackJob and both servers. A connection a crash left half dead can
   * hold the hub's close forever; the servers are closed regardless, and
   * that is reported as the error.
   */
  async close(): Promise<void> {
    this.releaseHeld();
    const closing = within(this.backjob.close(), 10_000, 'BackJob to close (a connection left behind by an earlier failure?)');
    const closed = await closing.then(() => undefined, (error: unknown) => error);
    for (const server of [this.server, this.large]) {
      server.closeAllConnections();
      for (const { socket, closed } of this.sockets.values()) if (!closed) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    if (closed) throw closed;
  }
}

// ───────────────────────────── raw WebSocket frames ─────────────────────────────

/** WebSocket opcodes (RFC 6455 §5.2). */
export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** One frame as a client writes it; `lengthField` lies about the payload length when set. */
export interface FrameSpec {
  opcode: number;
  payload: Uint8Array;
  fin?: boolean;
  /** The three RSV bits (must be 0 without an extension). */
  rsv?: number;
  /** Clients must mask; an unmasked client frame is a protocol error. */
  masked?: boolean;
  lengthField?: bigint;
}

const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

/** The bytes of one client frame. */
export function encodeFrame({ opcode, payload, fin = true, rsv = 0, masked = true, lengthField }: FrameSpec): Buffer {
  const length = lengthField ?? BigInt(payload.length);
  const head: number[] = [(fin ? 0x80 : 0) | ((rsv & 0x7) << 4) | (opcode & 0xf)];
  const maskBit = masked ? 0x80 : 0;
  let extended = Buffer.alloc(0);
  if (length < 126n) head.push(maskBit | Number(length));
  else if (length < 0x10000n) {
    head.push(maskBit | 126);
    extended = Buffer.alloc(2);
    extended.writeUInt16BE(Number(length));
  } else {
    head.push(maskBit | 127);
    extended = Buffer.alloc(8);
    extended.writeBigUInt64BE(length & 0xffff_ffff_ffff_ffffn);
  }
  const body = Buffer.from(payload);
  if (masked) for (let i = 0; i < body.length; i++) body[i] ^= MASK[i % 4];
  return Buffer.concat([Buffer.from(head), extended, masked ? MASK : Buffer.alloc(0), body]);
}

/** A frame the server sent. */
export interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** Close codes a server may end a hostile connection with (RFC 6455 §7.4.1). */
export const PROPER_CLOSE_CODES = new Set([1000, 1001, 1002, 1003, 1007, 1008, 1009]);

/**
 * A TCP client that speaks HTTP and WebSocket only as far as the test tells
 * it to: it writes whatever bytes it is given and records the answer (the
 * HTTP status line and headers, then, after a 101, every server frame).
 */
export class RawClient {
  /** The status line and headers of the server's answer, once complete. */
  head?: { status: number; text: string };
  readonly frames: ServerFrame[] = [];
  /** Something the server sent that is not a valid unmasked frame. */
  frameError?: string;
  /** Bytes received (any). */
  received = 0;
  /** The server ended its side (FIN) or the socket closed. */
  ended = false;
  closed = false;
  readonly startedAt: number;
  private buffer = Buffer.alloc(0);

  /** The local port: what the server sees as the peer's port (kept: a destroyed socket forgets it). */
  readonly port: number;

  private constructor(readonly socket: Socket, startedAt: number, port: number) {
    this.startedAt = startedAt;
    this.port = port;
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('end', () => {
      this.ended = true;
      setImmediate(changed);
      socket.end(); // a well-behaved peer: half-open only while the test wants it
    });
    socket.on('close', () => {
      this.ended = this.closed = true;
      setImmediate(changed);
    });
    socket.on('error', () => {}); // a reset from the server is an answer like any other
  }

  static async connect(port: number): Promise<RawClient> {
    const startedAt = performance.now();
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.setNoDelay(true);
    await within(once(socket, 'connect'), 5_000, 'connecting');
    return new RawClient(socket, startedAt, socket.localPort!);
  }

  get upgraded(): boolean {
    return this.head?.status === 101;
  }

  /** Writes bytes and resolves once they are handed to the kernel (or the socket is gone). */
  write(data: Uint8Array | string): Promise<void> {
    if (this.socket.destroyed || this.socket.writableEnded) return Promise.resolve();
    return new Promise((resolve) => this.socket.write(data, () => resolve()));
  }

  /** Sends a TCP reset (RST) and forgets the socket. */
  reset(): void {
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  /** The text frames received, read as a client reads them (a frame that is not a JSON object throws). */
  messages(): ServerMessage[] {
    return this.frames.filter((f) => f.opcode === OPCODE.text).map((f) => readServerMessage(f.payload.toString()));
  }

  /** The close code the server sent, if it sent a close frame (1005: one without a code). */
  closeCode(): number | undefined {
    const close = this.frames.find((f) => f.opcode === OPCODE.close);
    if (!close) return undefined;
    return close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005;
  }

  private onData(chunk: Buffer): void {
    this.received += chunk.length;
    this.buffer = Buffer.concat([this.buffer, chunk]);
    if (!this.head) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      const text = this.buffer.subarray(0, end).toString('latin1');
      this.head = { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? -1), text };
      this.buffer = this.buffer.subarray(end + 4);
    }
    if (this.upgraded) this.readFrames();
    setImmediate(changed);
  }

  private readFrames(): void {
    while (!this.frameError && this.buffer.length >= 2) {
      const b0 = this.buffer[0];
      const b1 = this.buffer[1];
      if (b1 & 0x80) {
        this.frameError = 'the server sent a masked frame';
        return;
      }
      let length = b1 & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) return;
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) return;
        length = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + length) return;
      const opcode = b0 & 0xf;
      if (b0 & 0x70) this.frameError = `the server set RSV bits (${b0.toString(16)})`;
      if (![0, 1, 2, 8, 9, 10].includes(opcode)) this.frameError = `the server sent opcode ${opcode}`;
      this.frames.push({ fin: Boolean(b0 & 0x80), opcode, payload: Buffer.from(this.buffer.subarray(offset, offset + length)) });
      this.buffer = this.buffer.subarray(offset + length);
    }
  }
}

/** An HTTP upgrade request for the live channel, with the headers a browser sends (each replaceable). */
export function upgradeRequest(path: string, port: number, headers: Record<string, string | undefined> = {}, method = 'GET'): string {
  const all: Record<string, string | undefined> = {
    Host: `127.0.0.1:${port}`,
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Protocol': SUBPROTOCOL,
    ...headers,
  };
  const lines = Object.entries(all).flatMap(([name, value]) => (value === undefined ? [] : [`${name}: ${value}`]));
  return `${method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

// ───────────────────────────── client text ─────────────────────────────

/** `arbitrary`'s value one time in `oneIn`, else `absent` (`fc.option`'s `freq` counts the other way round). */
export function sometimes<T, A = undefined>(arbitrary: fc.Arbitrary<T>, oneIn: number, absent?: A): fc.Arbitrary<T | A> {
  return fc.oneof({ weight: oneIn - 1, arbitrary: fc.constant(absent as A) }, { weight: 1, arbitrary });
}

/**
 * A string a client sends, shown in a failure report by a short label (a
 * 30 KB frame would drown the report; the seed replays it exactly).
 */
export interface ClientText {
  text: string;
  label: string;
}

function described(text: string, label?: string): ClientText {
  const shown = label ?? (text.length <= 160 ? JSON.stringify(text) : `${JSON.stringify(text.slice(0, 120))}… (${text.length} chars)`);
  return { text, label: shown, [fc.toStringMethod]: () => shown } as ClientText;
}

/** Any JSON value, of any shape, nested a few levels. */
export const jsonText: fc.Arbitrary<ClientText> = fc.json({ maxDepth: 6 }).map((text) => described(text));

/** A JSON literal that is legal JSON text but an unlikely value: huge, tiny, negative zero, exponent forms. */
const oddNumber = fc.constantFrom('1e400', '-1e400', '-0', '0.0', '1E2', '9007199254740993', '123456789012345678901234567890', '5e-324', '-1', '0.5');

/** JSON texts of values of the wrong kind for any field. */
const oddValue: fc.Arbitrary<string> = fc.oneof(
  oddNumber,
  fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
  fc.constantFrom('null', 'true', 'false', '[]', '{}', '""', '"\\u0000"', '"\\ud800"', '{"__proto__":{"polluted":1}}', '{"toString":1}'),
  fc.string({ unit: 'binary', maxLength: 80 }).map((s) => JSON.stringify(s)),
);

const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty'];

/**
 * Records that look almost like client messages, written as JSON text so
 * that keys like `__proto__` and duplicate keys reach the parser as sent:
 * the right type with wrong field types, real job ids and tokens in the
 * wrong places, huge numbers, unicode, prototype keys.
 */
export function nearMessageText(jobs: readonly KnownJob[]): fc.Arbitrary<ClientText> {
  const ids = jobs.map((j) => j.id);
  const tokens = jobs.map((j) => j.token);
  const typeText = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('subscribe', 'unsubscribe', 'cancel', 'list', 'unlist').map((t) => JSON.stringify(t)) },
    fc.constantFrom('Subscribe', 'subscribe ', 'hello', 'snapshot', 'error', '', '__proto__', 'constructor').map((t) => JSON.stringify(t)),
    oddValue,
  );
  const jobText = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...ids, 'a', 'x'.repeat(64), 'x'.repeat(65), 'job id', '../etc', 'ä').map((t) => JSON.stringify(t)) },
    fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/).map((t) => JSON.stringify(t)),
    oddValue,
  );
  const tokenText = fc.oneof(fc.constantFrom(...tokens, 'x'.repeat(128), 'x'.repeat(129), '').map((t) => JSON.stringify(t)), oddValue);
  const afterText = fc.oneof(fc.integer({ min: -2, max: 1_000 }).map(String), fc.constantFrom('9007199254740991', '9007199254740992'), oddValue);
  const refText = fc.oneof(fc.string({ maxLength: 70 }).map((t) => JSON.stringify(t)), oddValue);
  const key = fc.oneof(fc.constantFrom(...PROTOTYPE_KEYS, 'type', 'job', 'token', 'after', 'ref'), fc.string({ maxLength: 12 }));
  return fc
    .record({
      type: fc.option(typeText, { freq: 8 }),
      job: fc.option(jobText, { freq: 6 }),
      token: fc.option(tokenText, { freq: 2 }),
      after: fc.option(afterText, { freq: 2 }),
      ref: fc.option(refText, { freq: 2 }),
      extra: fc.array(fc.tuple(key, oddValue), { maxLength: 3 }),
      extraFirst: fc.boolean(),
    })
    .map(({ extra, extraFirst, ...fields }) => {
      const own = Object.entries(fields).flatMap(([k, v]) => (v === null ? [] : [[k, v] as [string, string]]));
      const entries = extraFirst ? [...extra, ...own] : [...own, ...extra];
      return described(`{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`);
    });
}

/** How one level of a deeply nested value opens and closes. */
const NESTINGS = [
  { open: '[', close: ']', inner: '' },
  { open: '{"a":', close: '}', inner: '0' },
  { open: '[{"type":', close: '}]', inner: '"subscribe"' },
  { open: '{"__proto__":', close: '}', inner: '{}' },
] as const;

/**
 * A value nested `depth` levels deep, bare or as one field of a message
 * (`{"type": [[[…]]]}`, `{"job": …}`), at most `maxBytes` long: the shape
 * that overflows the stack of any recursive walk over client data.
 */
export function nestedText(maxBytes: number): fc.Arbitrary<ClientText> {
  return fc
    .record({
      nesting: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.constant(1) }, fc.constant(2), fc.constant(3)),
      field: fc.oneof({ weight: 3, arbitrary: fc.constant('type') }, fc.constantFrom('job', 'ref', 'token', 'after', null)),
      // Uniform, not biased to the ends: the depth where a recursive walk overflows lies in between.
      fraction: fc.noBias(fc.integer({ min: 0, max: 1_000 })).map((n) => n / 1_000),
    })
    .map(({ nesting, field, fraction }) => {
      const { open, close, inner } = NESTINGS[nesting];
      const frame = field === null ? ['', ''] : [`{"type":"subscribe","job":"a",${JSON.stringify(field)}:`, '}'];
      if (field === 'type') frame[0] = '{"type":';
      const room = maxBytes - frame[0].length - frame[1].length - inner.length;
      const depth = Math.max(1, Math.floor((room / (open.length + close.length)) * fraction));
      const text = frame[0] + open.repeat(depth) + inner + close.repeat(depth) + frame[1];
      return described(text, `${depth} levels of ${JSON.stringify(open)} in ${field === null ? 'a bare value' : `"${field}"`} (${text.length} bytes)`);
    });
}

/** A valid message cut short: JSON that ends mid-token. */
export function truncatedText(jobs: readonly KnownJob[]): fc.Arbitrary<ClientText> {
  return fc
    .tuple(fc.constantFrom(...jobs), fc.constantFrom('subscribe', 'cancel', 'unsubscribe'), fc.double({ min: 0, max: 1, noNaN: true }))
    .map(([job, type, fraction]) => {
      const whole = JSON.stringify({ type, ref: 'r1', job: job.id, token: job.token, after: 0 });
      return described(whole.slice(0, Math.floor(whole.length * fraction)));
    });
}

/** Any string at all: random code points (lone surrogates included), JSON punctuation soup, control characters. */
export const anyText: fc.Arbitrary<ClientText> = fc
  .oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.string({ unit: fc.constantFrom('{', '}', '[', ']', '"', ':', ',', '\\', 'u', '0', 'e', '-', ' ', '\u0000', '\ud800', '\udfff', '\ufeff'), maxLength: 200 }),
  )
  .map((text) => described(text));

/** A message padded to `size` bytes give or take a few: just under, at and over a frame limit. */
export function sizedText(sizes: readonly number[]): fc.Arbitrary<ClientText> {
  return fc.tuple(fc.constantFrom(...sizes), fc.integer({ min: -3, max: 3 })).map(([size, delta]) => {
    const shell = '{"type":"subscribe","job":"a","ref":""}';
    const text = `{"type":"subscribe","job":"a","ref":"${'x'.repeat(Math.max(0, size + delta - shell.length))}"}`;
    return described(text, `a subscribe padded to ${text.length} bytes`);
  });
}
