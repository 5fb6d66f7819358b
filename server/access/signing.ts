/**
 * The cryptography of route dispatch: the HMAC-SHA256 signature that marks a
 * request as BackJob's own, the once-only acceptance of each signature, and
 * the sealing of the starting user's credentials while a job waits.
 *
 * Every key used here is derived from the one BackJob key with HKDF, one per
 * purpose, so a value made for one purpose (a watch token, a digest) can never
 * pass for another (a signature, a sealed envelope).
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/** Request header carrying the dispatch signature: `t=<unix seconds>,sig=<hex>`. */
export const SIGNATURE_HEADER = 'x-backjob-signature';
/** Request header carrying the id of the job a dispatched request runs. */
export const JOB_HEADER = 'x-backjob-job';
/** Seconds a signature stays valid either side of its timestamp (clock skew between web and worker processes). */
export const SIGNATURE_WINDOW_SECONDS = 60;

/**
 * What each derived key is for, with the version of what it is used on: a
 * change of layout changes the label, so a value made the old way can never
 * verify the new way. Dispatch signatures are v2 since they cover the query
 * string and the body.
 */
type Purpose = 'dispatch signature v2' | SealPurpose | 'credentials digest v1';

/** What a sealed value is for: one derived key each, so a sealed credential can never pass for a live ticket. */
export type SealPurpose = 'credentials seal v1' | 'live ticket v1';

/** Derived keys per BackJob key: HKDF costs more than the HMAC it feeds, and the key never changes. */
const derivedKeys = new WeakMap<Buffer, Map<Purpose, Buffer>>();

function derive(key: Buffer, purpose: Purpose): Buffer {
  let derived = derivedKeys.get(key);
  if (!derived) derivedKeys.set(key, (derived = new Map()));
  let subkey = derived.get(purpose);
  if (!subkey) derived.set(purpose, (subkey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), `backjob ${purpose}`, 32))));
  return subkey;
}

/**
 * What a dispatch signature covers: everything the route acts on, so that a
 * signature seen in transit cannot carry another query or body, even within
 * its window.
 */
export interface SignedRequest {
  jobId: string;
  /** Compared upper-case, as HTTP methods are. */
  method: string;
  /**
   * The path and query string exactly as on the request line: what the sender
   * put in the URL, `req.originalUrl` where it arrives (`req.url` loses the
   * prefix of a router mount). Byte for byte: `?a=1&b=2` is not `?b=2&a=1`.
   */
  url: string;
  /** SHA-256 of the exact body bytes, from {@link bodyDigest}; of nothing when there is no body. */
  bodyDigest: string;
}

/** The body digest a signature covers: SHA-256, hex, of the bytes as sent (a string counts as its UTF-8). */
export function bodyDigest(body: Uint8Array | string = ''): string {
  return createHash('sha256').update(body).digest('hex');
}

function signatureOf(key: Buffer, request: SignedRequest, timestamp: number): Buffer {
  // Newline-separated so that no field can bleed into the next: a job id, a method, a request
  // line's URL and a hex digest cannot contain one.
  const message = [request.jobId, request.method.toUpperCase(), request.url, request.bodyDigest, timestamp].join('\n');
  return createHmac('sha256', derive(key, 'dispatch signature v2')).update(message).digest();
}

/** The `x-backjob-signature` value for a request sent now (or at `now`, ms since epoch). */
export function signRequest(key: Buffer, request: SignedRequest, now = Date.now()): string {
  const timestamp = Math.floor(now / 1000);
  return `t=${timestamp},sig=${signatureOf(key, request, timestamp).toString('hex')}`;
}

/** Why a signature was refused, or `ok` with the signature (the replay-cache key). */
export type Verdict = { ok: true; signature: string } | { ok: false; reason: string };

/** A signature header taken apart, or why it cannot be one. */
type Parsed = { ok: true; timestamp: number; signature: string } | { ok: false; reason: string };

/**
 * The cheap half of {@link verifyRequest}: whether a header is well-formed and
 * within {@link SIGNATURE_WINDOW_SECONDS} of now. Needs neither the key nor
 * the body, so a receiver can refuse a malformed or stale header before it
 * reads a byte of the body to digest it.
 */
export function checkSignatureHeader(header: string, now = Date.now()): Verdict {
  const parsed = parseHeader(header, now);
  return parsed.ok ? { ok: true, signature: parsed.signature } : parsed;
}

function parseHeader(header: string, now: number): Parsed {
  const match = /^t=(\d{1,12}),sig=([0-9a-f]{64})$/.exec(header);
  if (!match) return { ok: false, reason: 'malformed signature' };
  const timestamp = Number(match[1]);
  if (Math.abs(now / 1000 - timestamp) > SIGNATURE_WINDOW_SECONDS) return { ok: false, reason: 'signature expired' };
  return { ok: true, timestamp, signature: match[2]! };
}

/**
 * Checks a signature header against the request it came with: well-formed,
 * within {@link SIGNATURE_WINDOW_SECONDS} of now, and made with `key` over this
 * very job id, method, URL (path and query) and body digest. Constant-time
 * comparison. Does not check replay: the caller claims the signature once
 * ({@link ReplayGuard}).
 */
export function verifyRequest(key: Buffer, header: string, request: SignedRequest, now = Date.now()): Verdict {
  const parsed = parseHeader(header, now);
  if (!parsed.ok) return parsed;
  const expected = signatureOf(key, request, parsed.timestamp);
  if (!timingSafeEqual(expected, Buffer.from(parsed.signature, 'hex'))) return { ok: false, reason: 'bad signature' };
  return { ok: true, signature: parsed.signature };
}

/**
 * Remembers claimed keys until they expire, in this process: the fallback of
 * `Backend.claimOnce` for backends that run in one process (memory, SQLite).
 * Entries live only as long as a signature could still be valid, so the map
 * stays as small as the traffic of the last two minutes.
 */
export class ReplayGuard {
  #expiries = new Map<string, number>();

  /** True the first time `key` is claimed within `ttlMs`, false after. */
  claimOnce(key: string, ttlMs: number, now = Date.now()): boolean {
    this.#sweep(now);
    const expiry = this.#expiries.get(key);
    if (expiry !== undefined && expiry > now) return false;
    this.#expiries.set(key, now + ttlMs);
    return true;
  }

  #sweep(now: number): void {
    // Insertion order is expiry order when every ttl is the same, so stop at the first live entry.
    for (const [key, expiry] of this.#expiries) {
      if (expiry > now) break;
      this.#expiries.delete(key);
    }
  }
}

/**
 * Seals a secret (the starting request's credentials) with AES-256-GCM under
 * a key derived from the BackJob key. The result is `v1.` + base64url of
 * nonce ‖ tag ‖ ciphertext: safe to store, useless without the key, and
 * tamper-evident.
 */
export function seal(key: Buffer, plaintext: string, purpose: SealPurpose = 'credentials seal v1'): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', derive(key, purpose), nonce);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `v1.${Buffer.concat([nonce, cipher.getAuthTag(), ciphertext]).toString('base64url')}`;
}

/** Opens what {@link seal} made. Null when it was made with another key or for another purpose, or altered. */
export function unseal(key: Buffer, sealed: string, purpose: SealPurpose = 'credentials seal v1'): string | null {
  if (!sealed.startsWith('v1.')) return null;
  const raw = Buffer.from(sealed.slice(3), 'base64url');
  if (raw.length < 28) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', derive(key, purpose), raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}

/**
 * A keyed hash of credentials: equal for the same credentials and key, and
 * reveals nothing about them. Lets merging tell two users' requests apart
 * without storing what identifies them.
 */
export function digest(key: Buffer, value: string): string {
  return createHmac('sha256', derive(key, 'credentials digest v1')).update(value).digest('hex');
}
