/**
 * The shim's key and what is derived from it: watch tokens (an HMAC of the
 * job id, so they need no storage) and the keyed digest an anonymous client's
 * address is stored as.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { BackjobError } from '../errors.js';

export class Keys {
  private hmacKey: Buffer | null = null;

  /** Sets the key (the configured one, or the store's secret) once it is known. */
  load(key: string): void {
    this.hmacKey = Buffer.from(key);
  }

  /** The HMAC key, once loaded (the shim is `ready`). */
  key(): Buffer {
    if (!this.hmacKey) throw new BackjobError('BACKJOB_ERR_NOT_READY', 'BackJob is not ready yet: await backjob.ready');
    return this.hmacKey;
  }

  /** The watch token of a job: whoever holds it may watch and cancel that one job. */
  tokenFor(id: string): string {
    return createHmac('sha256', this.key()).update(`watch:${id}`).digest('base64url');
  }

  tokenMatches(id: string, token: string): boolean {
    // Compare digests: equal length always, and timing says nothing about the token.
    const a = createHash('sha256').update(token).digest();
    const b = createHash('sha256').update(this.tokenFor(id)).digest();
    return timingSafeEqual(a, b);
  }

  /**
   * What an anonymous client's address is stored as: a keyed digest, enough to
   * tell addresses apart for the quota and the queue's turns, without keeping
   * visitors' addresses in the store for as long as their jobs are kept.
   */
  addressKey(address: string): string {
    return createHmac('sha256', this.key()).update(`address:${address}`).digest('base64url').slice(0, 22);
  }
}
