/**
 * What of the starting request goes along with an as-user route job: its
 * Cookie, Authorization and Host, and the scheme, host and client the app saw
 * on it, sealed with the key while the job waits (the store holds them only
 * encrypted, and only until the job is dispatched or ends).
 */
import type { IncomingMessage } from 'node:http';
import { digest, seal, unseal } from '../access/signing.js';
import { BackjobError } from '../errors.js';

/**
 * Headers of the starting request that go along with an as-user route job, as
 * they came: Cookie and Authorization make the route run as that user, Host
 * keeps virtual hosts working.
 */
const FORWARDED_HEADERS = ['cookie', 'authorization', 'host'] as const;

export type ForwardedHeaders = Partial<Record<(typeof FORWARDED_HEADERS)[number] | 'x-forwarded-proto' | 'x-forwarded-host' | 'x-forwarded-for', string>>;

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * The scheme, host and client address the app saw on the starting request,
 * as X-Forwarded headers: an app behind TLS or a proxy then sees in the job's
 * request what it saw in the user's (absolute URLs, secure-cookie checks,
 * audit logs). Express's view where there is one, which honours the app's
 * `trust proxy` setting; else the connection's own. Never the raw X-Forwarded
 * headers the user sent: the job's request comes from loopback, which an app
 * may trust, and would pass them off as its proxy's.
 */
function seenByApp(as: IncomingMessage): ForwardedHeaders {
  const viaExpress = as as IncomingMessage & { protocol?: unknown; host?: unknown; ip?: unknown };
  const socket = as.socket as (IncomingMessage['socket'] & { encrypted?: boolean }) | null;
  const proto = typeof viaExpress.protocol === 'string' ? viaExpress.protocol : socket?.encrypted ? 'https' : 'http';
  const host = typeof viaExpress.host === 'string' ? viaExpress.host : headerValue(as, 'host');
  const ip = typeof viaExpress.ip === 'string' ? viaExpress.ip : socket?.remoteAddress;
  return {
    'x-forwarded-proto': proto,
    ...(host ? { 'x-forwarded-host': host } : {}),
    ...(ip ? { 'x-forwarded-for': ip } : {}),
  };
}

/**
 * The starting request's forwarded headers sealed with the key
 * (`credentials`), plus a keyed digest of its Cookie and Authorization
 * (`credentialsDigest`, absent without either) so that merging tells two
 * users apart without storing anything that identifies them.
 */
export function sealCredentials(key: Buffer, as: IncomingMessage): { credentials: string; credentialsDigest?: string } {
  const forwarded: ForwardedHeaders = seenByApp(as);
  for (const name of FORWARDED_HEADERS) {
    const value = headerValue(as, name);
    if (value !== undefined) forwarded[name] = value;
  }
  const identity = forwarded.cookie || forwarded.authorization ? JSON.stringify([forwarded.cookie ?? '', forwarded.authorization ?? '']) : undefined;
  const credentials = seal(key, JSON.stringify(forwarded));
  return identity === undefined ? { credentials } : { credentials, credentialsDigest: digest(key, identity) };
}

/** The headers sealed by {@link sealCredentials} (none for `null`: an anonymous job). */
export function openCredentials(key: Buffer, sealed: string | null): ForwardedHeaders {
  if (sealed === null) return {};
  const opened = unseal(key, sealed);
  if (opened === null) throw new BackjobError('BACKJOB_ERR_CREDENTIALS', "The job's sealed credentials could not be opened (was the `key` changed?)");
  return JSON.parse(opened) as ForwardedHeaders;
}
