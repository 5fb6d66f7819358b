/**
 * Fuzz: `parseClientMessage` as a pure function. For any string a client can
 * send (any JSON, almost-messages, random code points, truncated JSON, values
 * nested as deep as 64 KiB allows), it returns a valid message or an error
 * reply, and never throws.
 *
 * `FUZZ_SEED=<n>` replays a run, `FUZZ_RUNS=<n>` sets the runs per property
 * (see fuzz-kit.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseClientMessage, type ClientMessage } from '../../shared/protocol.js';
import { anyText, checkProperty, jsonText, nearMessageText, nestedText, sizedText, timeoutFor, truncatedText, type KnownJob } from '../testing/fuzz-kit.js';

const JOBS: KnownJob[] = [{ id: 'V1StGXR8_Z5jdHi6B-myT', token: 'token-0123456789' }];
const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;
const REPLY_KEYS = new Set(['type', 'ref', 'job', 'code', 'message']);

/** Fails unless `result` is a well-formed client message or error reply. */
function assertWellFormed(result: ReturnType<typeof parseClientMessage>): void {
  assert.equal(typeof result, 'object');
  if (result.type === 'error') {
    assert.ok(['BACKJOB_ERR_BAD_FRAME', 'BACKJOB_ERR_UNKNOWN_TYPE'].includes(result.code), `error code ${result.code}`);
    assert.equal(typeof result.message, 'string');
    assert.ok(result.ref === undefined || (typeof result.ref === 'string' && result.ref.length <= 64), 'ref echoed within bounds');
    for (const key of Object.keys(result)) assert.ok(REPLY_KEYS.has(key), `unexpected key ${key} in the error reply`);
    JSON.stringify(result); // the hub serializes the reply: it must be serializable as is
    return;
  }
  assert.ok(['subscribe', 'unsubscribe', 'cancel', 'list', 'unlist'].includes(result.type), `type ${String(result.type)}`);
  assert.equal(Object.getPrototypeOf(result), Object.prototype, 'a plain object (no prototype carried over from __proto__)');
  assert.ok(result.ref === undefined || (typeof result.ref === 'string' && result.ref.length <= 64), 'ref is a short string');
  if (result.type === 'list') {
    assert.ok(result.limit === undefined || (Number.isSafeInteger(result.limit) && result.limit >= 1 && result.limit <= 100), 'limit within bounds');
    assert.ok(result.status === undefined || (Array.isArray(result.status) && result.status.length <= 5), 'status a short list');
    return;
  }
  if (result.type === 'unlist') return;
  assert.ok(typeof result.job === 'string' && JOB_ID.test(result.job), 'job is a job id');
  if (result.type !== 'unsubscribe') assert.ok(result.token === undefined || (typeof result.token === 'string' && result.token.length <= 128), 'token is a short string');
  if (result.type === 'subscribe') assert.ok(result.after === undefined || (Number.isSafeInteger(result.after) && result.after >= 0), 'after is a seq');
}

/** Calls the parser, turning a throw into a failure that names it. */
function parse(text: string): ReturnType<typeof parseClientMessage> {
  try {
    return parseClientMessage(text);
  } catch (error) {
    assert.fail(`parseClientMessage threw ${(error as Error)?.name}: ${(error as Error)?.message}`);
  }
}

const anyClientString = fc.oneof(
  { weight: 3, arbitrary: jsonText },
  { weight: 4, arbitrary: nearMessageText(JOBS) },
  { weight: 3, arbitrary: nestedText(64 * 1024) },
  { weight: 1, arbitrary: nestedText(16 * 1024) },
  { weight: 2, arbitrary: truncatedText(JOBS) },
  { weight: 2, arbitrary: anyText },
  { weight: 1, arbitrary: sizedText([16 * 1024, 64 * 1024]) },
);

test('parseClientMessage never throws and answers any string with a valid message or an error reply', { timeout: timeoutFor(1_500, 30_000) }, async (t) => {
  await checkProperty(
    t,
    fc.property(anyClientString, ({ text }) => assertWellFormed(parse(text))),
    { runs: 1_500, timeLimitMs: timeoutFor(1_500, 25_000) },
  );
});

test('the nesting from the issue (4,200 levels in "type") and the deepest 64 KiB allows are answered, not thrown', () => {
  for (const depth of [4_200, 8_190, 32_760]) {
    const text = `{"type":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const result = parse(text);
    assert.equal(result.type, 'error', `${depth} levels`);
  }
});

const validMessage: fc.Arbitrary<ClientMessage> = fc.oneof(
  fc.record(
    {
      type: fc.constant('subscribe' as const),
      ref: fc.string({ maxLength: 64 }),
      job: fc.stringMatching(JOB_ID),
      token: fc.string({ maxLength: 128 }),
      after: fc.maxSafeNat(),
    },
    { requiredKeys: ['type', 'job'] },
  ),
  fc.record({ type: fc.constant('cancel' as const), ref: fc.string({ maxLength: 64 }), job: fc.stringMatching(JOB_ID), token: fc.string({ maxLength: 128 }) }, { requiredKeys: ['type', 'job'] }),
  fc.record({ type: fc.constant('unsubscribe' as const), ref: fc.string({ maxLength: 64 }), job: fc.stringMatching(JOB_ID) }, { requiredKeys: ['type', 'job'] }),
);

test('every valid message survives the round trip through JSON and the parser unchanged', async (t) => {
  await checkProperty(
    t,
    fc.property(validMessage, (message) => {
      const parsed = parse(JSON.stringify(message));
      const defined = Object.fromEntries(Object.entries(parsed).filter(([, v]) => v !== undefined));
      assert.deepEqual(defined, { ...message }); // fast-check's records have no prototype
    }),
    { runs: 500 },
  );
});
