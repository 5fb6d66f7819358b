import assert from 'node:assert/strict';
import { test } from 'node:test';
import { packEvents, readServerMessage, unpackEvents, type JobEvent } from './protocol.js';

const job = 'job-1';
const at = 1_767_225_600_000;
const log = (seq: number, line: string, when = at): JobEvent => ({ type: 'job:log', line, jobId: job, seq, at: when });

test('packed events read back whole: lines, other events, seq gaps (coalesced progress) and a new `at`', () => {
  const events: JobEvent[] = [
    log(7, 'first'),
    log(8, ''),
    { type: 'job:progress', progress: 40, text: 'a "quoted" text', jobId: job, seq: 9, at },
    // Seqs 10 and 11 were coalesced away for a slow socket.
    { type: 'job:progress', progress: 60, jobId: job, seq: 12, at },
    log(13, 'after the gap'),
    log(14, 'a later commit', at + 5),
    log(15, 'and its next line', at + 5),
    { type: 'job:completed', result: { rows: [1, 2] }, jobId: job, seq: 16, at: at + 5 },
  ];
  const packed = packEvents(job, events);
  assert.deepEqual(packed.events, [
    'first',
    '',
    { type: 'job:progress', progress: 40, text: 'a "quoted" text' },
    { type: 'job:progress', progress: 60, seq: 12 },
    'after the gap',
    { type: 'job:log', line: 'a later commit', at: at + 5 },
    'and its next line',
    { type: 'job:completed', result: { rows: [1, 2] } },
  ]);
  assert.equal(packed.seq, 7);
  assert.equal(packed.at, at);
  assert.deepEqual(unpackEvents(JSON.parse(JSON.stringify(packed))), events);
  assert.deepEqual(readServerMessage(JSON.stringify(packed)), { type: 'events', job, events });
});

test('a page of log lines is an array of strings, about half the bytes of whole events', () => {
  const events = Array.from({ length: 256 }, (_, i) => log(100 + i, `${i} of the log, about as long as a real line is`));
  const packed = JSON.stringify(packEvents(job, events));
  const whole = JSON.stringify({ type: 'events', job, events });
  assert.ok(packed.length < whole.length / 2, `${packed.length} against ${whole.length} bytes`);
  assert.deepEqual(readServerMessage(packed), JSON.parse(whole));
});

test('version 1 messages pass through whole; other messages untouched; junk is skipped or refused, never thrown past', () => {
  const whole = { type: 'events', job, events: [log(1, 'one'), log(2, 'two')] };
  assert.deepEqual(readServerMessage(JSON.stringify(whole)), whole);
  const hello = { type: 'hello', version: 2, time: at };
  assert.deepEqual(readServerMessage(JSON.stringify(hello)), hello);
  assert.deepEqual(unpackEvents({ job, seq: 1, at, events: [null, 3, 'kept', [], { type: 'job:log', line: 'also' }] }), [
    log(1, 'kept'),
    log(2, 'also'),
  ]);
  assert.deepEqual(unpackEvents({ job, seq: 1, events: 'not a list' }), []);
  for (const raw of ['null', '"text"', '42', 'not json']) assert.throws(() => readServerMessage(raw));
});
