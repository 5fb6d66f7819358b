import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoff, retryWithBackoff, RETRY_MAX_MS, RETRY_MIN_MS } from './backoff.js';
import { THIS_PROCESS, newRunnerId } from './runner-id.js';

describe('backoff', () => {
  it('doubles from the minimum to the maximum, and each sequence starts afresh', () => {
    const next = backoff();
    const delays = Array.from({ length: 8 }, () => next());
    assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    assert.equal(delays[0], RETRY_MIN_MS);
    assert.equal(delays.at(-1), RETRY_MAX_MS);
    assert.equal(backoff()(), RETRY_MIN_MS);
  });

  it('retries a failing attempt until it succeeds, and gives up when told to', async (t) => {
    // The backoff's timers do not hold the process open (a shim closing must not wait on them): this test does.
    const alive = setInterval(() => {}, 1_000);
    t.after(() => clearInterval(alive));
    let calls = 0;
    const value = await retryWithBackoff(async () => {
      if (++calls < 3) throw new Error('store down');
      return 'stored';
    }, () => false);
    assert.equal(value, 'stored');
    assert.equal(calls, 3);

    let tries = 0;
    await assert.rejects(
      retryWithBackoff(async () => {
        tries++;
        throw new Error('still down');
      }, () => tries >= 2),
      /still down/,
    );
    assert.equal(tries, 2);
  });
});

describe('runner ids', () => {
  it('are unique per shim and share the prefix of this process', () => {
    const [a, b] = [newRunnerId(), newRunnerId()];
    assert.notEqual(a, b);
    assert.ok(a.startsWith(THIS_PROCESS) && b.startsWith(THIS_PROCESS));
    assert.ok(THIS_PROCESS.includes(`:${process.pid}:`));
  });
});
