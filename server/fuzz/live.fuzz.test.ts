/**
 * Fuzz: the live channel on a real socket. Each run opens a WebSocket by
 * hand on a raw TCP socket and writes a random sequence of frames: any JSON,
 * almost-messages, values nested as deep as the frame limit allows, random
 * code points and random bytes as text and as binary frames, truncated JSON,
 * empty and oversized frames, fragments, pings and pongs with payloads, close
 * frames with any code, frames that break the protocol, bytes that are no
 * frame at all, a frame cut short; then a probe (a ping), a FIN or a reset.
 *
 * Whatever comes, the process stays up (no exception escapes), the socket
 * gets valid replies (`hello` first, then snapshots, events or
 * `BACKJOB_ERR_…` errors) or a close with a proper code, the server lets go
 * of the socket, and a fresh legitimate client can still subscribe and get a
 * snapshot.
 *
 * `FUZZ_SEED=<n>` replays a run, `FUZZ_RUNS=<n>` sets the runs (see fuzz-kit.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SUBPROTOCOL } from '../../shared/protocol.js';
import {
  FuzzServer,
  useFuzzServer,
  OPCODE,
  PROPER_CLOSE_CODES,
  ProcessGuard,
  RawClient,
  anyText,
  checkProperty,
  encodeFrame,
  jsonText,
  nearMessageText,
  nestedText,
  sometimes,
  sizedText,
  timeoutFor,
  truncatedText,
  until,
  upgradeRequest,
  type ClientText,
  type FrameSpec,
} from '../testing/fuzz-kit.js';

let fuzz!: FuzzServer;
let guard!: ProcessGuard;
useFuzzServer((server, processGuard) => ((fuzz = server), (guard = processGuard)));

/** Waits for `condition`; if it never holds, fails with what escaped to the process, else with `what`. */
async function expect(condition: () => boolean, what: string, mark: number): Promise<void> {
  if (await until(condition, 5_000, { guard, mark })) return;
  guard.assertNone(mark, `while waiting for ${what}`);
  assert.fail(`Timed out after 5000 ms waiting for ${what}`);
}

/** Something the test writes on an open WebSocket. */
type Action =
  | { kind: 'text'; frame: ClientText }
  /** Arbitrary bytes in a text frame: invalid UTF-8 included. */
  | { kind: 'bytes-as-text'; bytes: Uint8Array }
  | { kind: 'binary'; bytes: Uint8Array }
  | { kind: 'ping' | 'pong'; bytes: Uint8Array }
  /** One message split over `parts` frames, a ping between the first two when `pingBetween`. */
  | { kind: 'fragmented'; frame: ClientText; parts: number; pingBetween: boolean }
  | { kind: 'close'; code: number | null; reason: string }
  | { kind: 'protocol-error'; variant: ProtocolError }
  /** Bytes that are no frame: the stream is out of step from here on. */
  | { kind: 'garbage'; bytes: Uint8Array };

const PROTOCOL_ERRORS = ['unmasked', 'rsv', 'opcode', 'long-ping', 'fragmented-ping', 'stray-continuation', 'huge-length', 'unfinished-then-text'] as const;
type ProtocolError = (typeof PROTOCOL_ERRORS)[number];

/** How a run ends: a probe ping (the server must answer or close), a FIN, or a reset; optionally after a frame cut short. */
interface Ending {
  how: 'probe' | 'fin' | 'reset';
  /** A frame whose bytes stop at this fraction (the server waits for the rest until the FIN or reset). */
  truncate: { frame: ClientText; fraction: number } | null;
}

function frameText(jobs: FuzzServer['jobs']): fc.Arbitrary<ClientText> {
  return fc.oneof(
    { weight: 3, arbitrary: jsonText },
    { weight: 5, arbitrary: nearMessageText(jobs) },
    { weight: 4, arbitrary: nestedText(16 * 1024) },
    { weight: 1, arbitrary: nestedText(64 * 1024) },
    { weight: 2, arbitrary: truncatedText(jobs) },
    { weight: 2, arbitrary: anyText },
    { weight: 1, arbitrary: sizedText([0, 16 * 1024, 64 * 1024]) },
  );
}

function actionOf(jobs: FuzzServer['jobs']): fc.Arbitrary<Action> {
  const text = frameText(jobs);
  const bytes = fc.uint8Array({ maxLength: 300 });
  const control = fc.uint8Array({ maxLength: 125 });
  return fc.oneof(
    { weight: 10, arbitrary: text.map((frame) => ({ kind: 'text' as const, frame })) },
    { weight: 2, arbitrary: bytes.map((b) => ({ kind: 'bytes-as-text' as const, bytes: b })) },
    { weight: 2, arbitrary: bytes.map((b) => ({ kind: 'binary' as const, bytes: b })) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom('ping' as const, 'pong' as const), control).map(([kind, b]) => ({ kind, bytes: b })) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('fragmented' as const), frame: text, parts: fc.integer({ min: 2, max: 5 }), pingBetween: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('close' as const), code: fc.option(fc.oneof(fc.constantFrom(1000, 1001, 1005, 1006, 1015, 0, 999, 2999, 3000, 4999, 5000), fc.nat({ max: 0xffff }))), reason: fc.string({ maxLength: 30 }) }) },
    { weight: 1, arbitrary: fc.constantFrom(...PROTOCOL_ERRORS).map((variant) => ({ kind: 'protocol-error' as const, variant })) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => ({ kind: 'garbage' as const, bytes: b })) },
  );
}

function endingOf(jobs: FuzzServer['jobs']): fc.Arbitrary<Ending> {
  return fc.record({
    how: fc.constantFrom('probe' as const, 'probe' as const, 'fin' as const, 'reset' as const),
    truncate: sometimes(fc.record({ frame: frameText(jobs), fraction: fc.double({ min: 0, max: 0.99, noNaN: true }) }), 5, null),
  });
}

const utf8 = (text: string) => Buffer.from(text);

/** The frames an action writes (one chunk of bytes), and whether the stream is still in step after it. */
function bytesOf(action: Action): { bytes: Buffer; inStep: boolean } {
  const frame = (spec: FrameSpec) => encodeFrame(spec);
  switch (action.kind) {
    case 'text':
      return { bytes: frame({ opcode: OPCODE.text, payload: utf8(action.frame.text) }), inStep: true };
    case 'bytes-as-text':
      return { bytes: frame({ opcode: OPCODE.text, payload: action.bytes }), inStep: true };
    case 'binary':
      return { bytes: frame({ opcode: OPCODE.binary, payload: action.bytes }), inStep: true };
    case 'ping':
      return { bytes: frame({ opcode: OPCODE.ping, payload: action.bytes }), inStep: true };
    case 'pong':
      return { bytes: frame({ opcode: OPCODE.pong, payload: action.bytes }), inStep: true };
    case 'fragmented': {
      const payload = utf8(action.frame.text);
      const size = Math.ceil(payload.length / action.parts) || 1;
      const chunks: Buffer[] = [];
      for (let i = 0, start = 0; i < action.parts; i++, start += size) {
        const last = i === action.parts - 1;
        chunks.push(frame({ opcode: i === 0 ? OPCODE.text : OPCODE.continuation, payload: payload.subarray(start, last ? undefined : start + size), fin: last }));
        if (i === 0 && action.pingBetween) chunks.push(frame({ opcode: OPCODE.ping, payload: utf8('between') }));
      }
      return { bytes: Buffer.concat(chunks), inStep: true };
    }
    case 'close': {
      const payload = action.code === null ? Buffer.alloc(0) : Buffer.concat([Buffer.from([action.code >> 8, action.code & 0xff]), utf8(action.reason).subarray(0, 123)]);
      return { bytes: frame({ opcode: OPCODE.close, payload }), inStep: true };
    }
    case 'protocol-error': {
      const hello = utf8('{"type":"subscribe","job":"a"}');
      const bytes = {
        unmasked: () => frame({ opcode: OPCODE.text, payload: hello, masked: false }),
        rsv: () => frame({ opcode: OPCODE.text, payload: hello, rsv: 0b100 }),
        opcode: () => frame({ opcode: 0x3, payload: hello }),
        'long-ping': () => frame({ opcode: OPCODE.ping, payload: Buffer.alloc(126, 1) }),
        'fragmented-ping': () => frame({ opcode: OPCODE.ping, payload: hello, fin: false }),
        'stray-continuation': () => frame({ opcode: OPCODE.continuation, payload: hello }),
        // A length no server should try to buffer: 2^62 bytes announced, a few sent.
        'huge-length': () => frame({ opcode: OPCODE.text, payload: hello, lengthField: 1n << 62n }),
        'unfinished-then-text': () => Buffer.concat([frame({ opcode: OPCODE.text, payload: hello, fin: false }), frame({ opcode: OPCODE.text, payload: hello })]),
      }[action.variant]();
      return { bytes, inStep: action.variant !== 'huge-length' };
    }
    case 'garbage':
      return { bytes: Buffer.from(action.bytes), inStep: false };
  }
}

const SERVER_TYPES = new Set(['hello', 'snapshot', 'events', 'canceled', 'list', 'list:changed', 'error']);

/** Fails unless every frame the server sent is a valid reply (and any close has a proper code). */
function assertValidReplies(client: RawClient, actions: Action[]): void {
  assert.equal(client.frameError, undefined, `the server broke the framing: ${client.frameError}`);
  const frames = client.frames.filter((f) => f.opcode !== OPCODE.ping && f.opcode !== OPCODE.pong);
  const closeAt = frames.findIndex((f) => f.opcode === OPCODE.close);
  assert.ok(closeAt === -1 || closeAt === frames.length - 1, 'nothing after the close frame');
  const texts = frames.filter((f) => f.opcode === OPCODE.text || f.opcode === OPCODE.continuation);
  assert.ok(texts.every((f) => f.opcode === OPCODE.text && f.fin), 'replies are single text frames');
  assert.ok(!frames.some((f) => f.opcode === OPCODE.binary), 'no binary replies');
  const messages = client.messages() as { type?: unknown; code?: unknown; message?: unknown }[];
  assert.equal(messages[0]?.type, 'hello', 'hello comes first');
  for (const message of messages) {
    assert.ok(SERVER_TYPES.has(String(message.type)), `reply type ${JSON.stringify(message.type)}`);
    if (message.type === 'error') {
      assert.match(String(message.code), /^BACKJOB_ERR_[A-Z_]+$/, 'error replies carry a BACKJOB_ERR_ code');
      assert.equal(typeof message.message, 'string');
      assert.notEqual(message.code, 'BACKJOB_ERR_INTERNAL', `an internal error: ${String(message.message)}`);
    }
  }
  // A server echoes the close it got (RFC 6455 §5.5.1): a codeless close, or the client's own code.
  const echoed = new Set(actions.flatMap((a) => (a.kind === 'close' ? [a.code ?? 1005] : [])));
  const code = client.closeCode();
  assert.ok(code === undefined || PROPER_CLOSE_CODES.has(code) || echoed.has(code), `closed with code ${code}`);
}

test(
  'no sequence of frames, pings, resets or broken frames ends the process, gets an invalid reply or stops the server serving',
  { timeout: timeoutFor(250, 60_000) },
  async (t) => {
    const run = fc.asyncProperty(
      fc.constantFrom('default' as const, 'default' as const, 'large' as const),
      fc.array(actionOf(fuzz.jobs), { minLength: 1, maxLength: 8 }),
      endingOf(fuzz.jobs),
      async (target, actions, ending) => {
        const mark = guard.mark();
        const port = fuzz.portOf(target);
        const client = await RawClient.connect(port);
        try {
          await client.write(upgradeRequest('/backjob/ws', port));
          await expect(() => client.head !== undefined || client.ended, 'an answer to a valid upgrade', mark);
          assert.equal(client.head?.status, 101, `a valid upgrade is accepted: ${client.head?.text}`);
          assert.match(client.head!.text, new RegExp(`Sec-WebSocket-Protocol: ${SUBPROTOCOL.replace('.', '\\.')}`, 'i'));
          await expect(() => client.frames.length > 0 || client.ended, 'hello', mark);

          let inStep = true;
          for (const action of actions) {
            const written = bytesOf(action);
            await client.write(written.bytes);
            inStep &&= written.inStep;
          }
          if (ending.truncate) {
            const whole = encodeFrame({ opcode: OPCODE.text, payload: utf8(ending.truncate.frame.text) });
            await client.write(whole.subarray(0, Math.max(1, Math.floor(whole.length * ending.truncate.fraction))));
            inStep = false;
          }

          const serverGone = () => client.ended;
          if (ending.how === 'probe' && inStep) {
            // ws answers pings in order, once every frame before has been handled: the pong (or a
            // close) says the server dealt with everything the run sent.
            const probe = utf8(`probe-${mark}`);
            await client.write(encodeFrame({ opcode: OPCODE.ping, payload: probe }));
            const answered = () => client.frames.some((f) => f.opcode === OPCODE.pong && f.payload.equals(probe)) || serverGone();
            await expect(answered, 'the server to answer the probe ping (or close)', mark);
            guard.assertNone(mark, 'while the server handled the frames');
            if (!serverGone()) await client.write(encodeFrame({ opcode: OPCODE.close, payload: Buffer.from([0x03, 0xe8]) }));
            await expect(serverGone, 'the server to close after our close frame', mark);
          } else if (ending.how === 'reset') {
            client.reset();
          } else {
            client.socket.end();
          }

          if (!(await fuzz.released(client, { guard, mark }))) {
            guard.assertNone(mark, 'while waiting for the server to let go of the socket');
            assert.fail('Timed out after 5000 ms waiting for the server to let go of the socket');
          }
          guard.assertNone(mark, 'during the run');
          assertValidReplies(client, actions);
          await fuzz.assertStillServes(target);
          guard.assertNone(mark, 'after the run');
        } finally {
          client.reset();
        }
      },
    );
    await checkProperty(t, run, { runs: 250, runTimeoutMs: 20_000, timeLimitMs: timeoutFor(250, 30_000) });
  },
);

test('after the fuzzing, no server-side socket is left open but the ones a test holds', async () => {
  assert.ok(await until(() => fuzz.openSockets() === 0, 5_000), `${fuzz.openSockets()} server-side sockets still open`);
});
