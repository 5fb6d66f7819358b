import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { ReplayGuard, SIGNATURE_WINDOW_SECONDS, bodyDigest, checkSignatureHeader, digest, seal, signRequest, unseal, verifyRequest } from './signing.js';

const key = randomBytes(32);
const request = { jobId: 'job_123', method: 'POST', url: '/reports/build?month=3', bodyDigest: bodyDigest('title=Q3&format=pdf') };

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

  test('any change to job id, method, path, query string, body or timestamp is refused', () => {
    const header = signRequest(key, request);
    const refused = { ok: false, reason: 'bad signature' };
    assert.deepEqual(verifyRequest(key, header, { ...request, jobId: 'job_124' }), refused);
    assert.deepEqual(verifyRequest(key, header, { ...request, method: 'GET' }), refused);
    assert.deepEqual(verifyRequest(key, header, { ...request, url: '/admin/drop?month=3' }), refused);
    for (const url of ['/reports/build', '/reports/build?month=4', '/reports/build?month=3&all=1', '/reports/build?month=3&', '/reports/build?MONTH=3']) {
      assert.deepEqual(verifyRequest(key, header, { ...request, url }), refused, url);
    }
    for (const body of ['', 'title=Q3&format=csv', 'title=Q3&format=pdf&', 'format=pdf&title=Q3']) {
      assert.deepEqual(verifyRequest(key, header, { ...request, bodyDigest: bodyDigest(body) }), refused, body);
    }
    const [, t, sig] = /^t=(\d+),sig=(.+)$/.exec(header)!;
    assert.deepEqual(verifyRequest(key, `t=${Number(t) - 1},sig=${sig}`, request), { ok: false, reason: 'bad signature' });
    const flipped = `t=${t},sig=${sig.slice(0, -1)}${sig.endsWith('0') ? '1' : '0'}`;
    assert.deepEqual(verifyRequest(key, flipped, request), { ok: false, reason: 'bad signature' });
  });

  test('fields cannot bleed into one another: moving text across the separator changes the signature', () => {
    const a = { jobId: 'job_1', method: 'GET', url: '/a', bodyDigest: bodyDigest() };
    const header = signRequest(key, a);
    assert.equal(verifyRequest(key, header, { ...a, jobId: 'job_1\nGET', method: '' }).ok, false);
    assert.equal(verifyRequest(key, header, { ...a, method: 'GET\n/a', url: '' }).ok, false);
  });

  test('the body digest is SHA-256 of the bytes as sent: a string counts as its UTF-8, no body as nothing', () => {
    assert.equal(bodyDigest(), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(bodyDigest(''), bodyDigest(Buffer.alloc(0)));
    assert.equal(bodyDigest('café €'), bodyDigest(Buffer.from('café €', 'utf8')));
    assert.notEqual(bodyDigest('café'), bodyDigest(Buffer.from('café', 'latin1')));
  });

  test('the cheap check takes format and freshness only, as the full check does', () => {
    const now = Date.now();
    assert.equal(checkSignatureHeader(signRequest(key, request, now), now).ok, true);
    assert.equal(checkSignatureHeader(`t=${Math.floor(now / 1000)},sig=${'0'.repeat(64)}`, now).ok, true, 'it knows no key');
    assert.deepEqual(checkSignatureHeader(signRequest(key, request, now - 10 * 60_000), now), { ok: false, reason: 'signature expired' });
    assert.deepEqual(checkSignatureHeader('t=1,sig=zz', now), { ok: false, reason: 'malformed signature' });
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

  test('what an earlier release sealed and digested still opens and matches (their key labels never change)', () => {
    // Made with the release before dispatch signatures went to v2: credentials of jobs still waiting
    // across the upgrade, and merge keys, must keep working.
    const fixed = Buffer.from('fixed-test-key-0123456789abcdef');
    assert.equal(unseal(fixed, 'v1.BejQTom5ykj1RsaTclAH1FvuI79IjVCisn-8EIU-HbXxLpnJfX1MWoBgrKXhWA'), '{"cookie":"sid=1"}');
    assert.equal(digest(fixed, 'sid=1'), '38dfe681bc7bcface9436018e626c8eabf50a05d9b18f270a2dffbf7e584b4ae');
  });

  test('the digest is stable per key and value, and differs across values and keys', () => {
    assert.equal(digest(key, 'sid=1'), digest(key, 'sid=1'));
    assert.notEqual(digest(key, 'sid=1'), digest(key, 'sid=2'));
    assert.notEqual(digest(key, 'sid=1'), digest(randomBytes(32), 'sid=1'));
    assert.ok(!digest(key, 'sid=1').includes('sid'));
  });
});
