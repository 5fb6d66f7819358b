import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { ReplayGuard, SIGNATURE_WINDOW_SECONDS, digest, seal, signRequest, unseal, verifyRequest } from './signing.js';

const key = randomBytes(32);
const request = { jobId: 'job_123', method: 'POST', path: '/reports/build' };

describe('dispatch signature', () => {
  test('a signature made with the key verifies for the same request', () => {
    const header = signRequest(key, request);
    assert.match(header, /^t=\d+,sig=[0-9a-f]{64}$/);
    const verdict = verifyRequest(key, header, request);
    assert.equal(verdict.ok, true);
  });

  test('the method is compared case-insensitively, as HTTP does', () => {
    assert.equal(verifyRequest(key, signRequest(key, request), { ...request, method: 'post' }).ok, true);
  });

  test('any change to job id, method, path or timestamp is refused', () => {
    const header = signRequest(key, request);
    assert.deepEqual(verifyRequest(key, header, { ...request, jobId: 'job_124' }), { ok: false, reason: 'bad signature' });
    assert.deepEqual(verifyRequest(key, header, { ...request, method: 'GET' }), { ok: false, reason: 'bad signature' });
    assert.deepEqual(verifyRequest(key, header, { ...request, path: '/admin/drop' }), { ok: false, reason: 'bad signature' });
    const [, t, sig] = /^t=(\d+),sig=(.+)$/.exec(header)!;
    assert.deepEqual(verifyRequest(key, `t=${Number(t) - 1},sig=${sig}`, request), { ok: false, reason: 'bad signature' });
    const flipped = `t=${t},sig=${sig.slice(0, -1)}${sig.endsWith('0') ? '1' : '0'}`;
    assert.deepEqual(verifyRequest(key, flipped, request), { ok: false, reason: 'bad signature' });
  });

  test('a signature made with another key is refused', () => {
    assert.equal(verifyRequest(randomBytes(32), signRequest(key, request), request).ok, false);
  });

  test('a signature outside the time window is refused, in the past and in the future', () => {
    const now = Date.now();
    const old = signRequest(key, request, now - (SIGNATURE_WINDOW_SECONDS + 5) * 1000);
    assert.deepEqual(verifyRequest(key, old, request, now), { ok: false, reason: 'signature expired' });
    const future = signRequest(key, request, now + (SIGNATURE_WINDOW_SECONDS + 5) * 1000);
    assert.deepEqual(verifyRequest(key, future, request, now), { ok: false, reason: 'signature expired' });
  });

  test('malformed headers are refused without throwing', () => {
    for (const header of ['', 'sig=abc', 't=1,sig=zz', `t=${Math.floor(Date.now() / 1000)},sig=${'a'.repeat(63)}`, 't=1;sig=' + 'a'.repeat(64)]) {
      assert.deepEqual(verifyRequest(key, header, request), { ok: false, reason: 'malformed signature' }, header);
    }
  });
});

describe('ReplayGuard', () => {
  test('accepts a key once while it lives, and again after it expired', () => {
    const guard = new ReplayGuard();
    const now = 1_000_000;
    assert.equal(guard.claimOnce('a', 1000, now), true);
    assert.equal(guard.claimOnce('a', 1000, now + 10), false);
    assert.equal(guard.claimOnce('b', 1000, now + 10), true);
    assert.equal(guard.claimOnce('a', 1000, now + 1001), true);
  });
});

describe('sealed credentials', () => {
  test('seal and unseal round-trip, and the sealed form hides the plaintext', () => {
    const secret = JSON.stringify({ cookie: 'sid=s3cr3t', authorization: 'Bearer abc' });
    const sealed = seal(key, secret);
    assert.ok(!sealed.includes('s3cr3t'));
    assert.ok(!Buffer.from(sealed.slice(3), 'base64url').toString('latin1').includes('s3cr3t'));
    assert.equal(unseal(key, sealed), secret);
  });

  test('the same plaintext seals differently each time (fresh nonce)', () => {
    assert.notEqual(seal(key, 'x'), seal(key, 'x'));
  });

  test('another key, a tampered envelope or garbage opens to null', () => {
    const sealed = seal(key, 'sid=1');
    assert.equal(unseal(randomBytes(32), sealed), null);
    const raw = Buffer.from(sealed.slice(3), 'base64url');
    raw[raw.length - 1] ^= 1;
    assert.equal(unseal(key, `v1.${raw.toString('base64url')}`), null);
    assert.equal(unseal(key, 'v1.AAAA'), null);
    assert.equal(unseal(key, 'plain text'), null);
  });

  test('the digest is stable per key and value, and differs across values and keys', () => {
    assert.equal(digest(key, 'sid=1'), digest(key, 'sid=1'));
    assert.notEqual(digest(key, 'sid=1'), digest(key, 'sid=2'));
    assert.notEqual(digest(key, 'sid=1'), digest(randomBytes(32), 'sid=1'));
    assert.ok(!digest(key, 'sid=1').includes('sid'));
  });
});
