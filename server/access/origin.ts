/**
 * The one origin policy of the HTTP API and the live channel: which pages
 * may drive BackJob with the user's cookies. A browser's `Origin` must match
 * in scheme, host and port — the request's own origin by default, or one of
 * `allowedOrigins`. What the request's own origin is comes from the socket
 * and `Host`, or from `X-Forwarded-Proto` / `X-Forwarded-Host` when, and only
 * when, the app trusts the proxy that sent them (Express's `trust proxy`, or
 * BackJob's `trustProxy` option for servers Express never sees).
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import proxyaddr from 'proxy-addr';
import { invalidOption } from '../validate.js';
import type { TrustProxy } from '../types.js';

export type { TrustProxy, TrustProxySetting } from '../types.js';

/** What decides whether an `Origin` may drive BackJob. */
export interface OriginPolicy {
  /** Exact origins (`https://app.example`) allowed besides none; null: the request's own origin only. */
  readonly allowed: ReadonlySet<string> | null;
  /** Who may tell the request's origin by forwarded headers; null: ask the Express app the request went through. */
  readonly trustProxy: TrustProxy | null;
}

/** Nobody's forwarded headers count. */
const TRUST_NONE: TrustProxy = () => false;

/** `https://Example.com:443/` → `https://example.com`; null for anything that is not an http(s) origin. */
export function normalizeOrigin(value: string): string | null {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : null;
  } catch {
    return null;
  }
}

/** Checks and compiles the `allowedOrigins` and `trustProxy` options; throws a clear error for a bad one. */
export function resolveOriginPolicy(allowedOrigins: unknown, trustProxy: unknown): OriginPolicy {
  let allowed: Set<string> | null = null;
  if (allowedOrigins !== undefined) {
    if (!Array.isArray(allowedOrigins)) throw invalidOption('allowedOrigins', 'an array of origins such as `https://app.example`', allowedOrigins);
    allowed = new Set();
    for (const origin of allowedOrigins) {
      const normalized = typeof origin === 'string' ? normalizeOrigin(origin) : null;
      if (!normalized) throw invalidOption('allowedOrigins', 'an array of origins such as `https://app.example`', origin);
      allowed.add(normalized);
    }
  }
  return { allowed, trustProxy: trustProxy === undefined ? null : compileTrust(trustProxy) };
}

function compileTrust(setting: unknown): TrustProxy {
  if (typeof setting === 'function') return setting as TrustProxy;
  if (setting === true) return () => true;
  if (setting === false) return TRUST_NONE;
  if (typeof setting === 'number' && Number.isSafeInteger(setting) && setting >= 0) return (_address, hop) => hop < setting;
  const list = typeof setting === 'string' ? setting.split(',').map((s) => s.trim()) : setting;
  if (Array.isArray(list) && list.every((entry) => typeof entry === 'string')) {
    try {
      return proxyaddr.compile(list);
    } catch (error) {
      throw invalidOption('trustProxy', `addresses, subnets or names Express's \`trust proxy\` accepts (${(error as Error).message})`, setting);
    }
  }
  throw invalidOption('trustProxy', "a boolean, a hop count, addresses or subnets, or a function (address, hop) => boolean, as Express's `trust proxy`", setting);
}

/** The first value of a comma-separated header a proxy may have appended to. */
function firstValue(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value?.split(',')[0]?.trim() || undefined;
}

/** The trust function for this request: the policy's own, else the Express app's the request went through, else nobody. */
function trustFor(req: IncomingMessage, policy: OriginPolicy, learned: TrustProxy | null): TrustProxy {
  if (policy.trustProxy) return policy.trustProxy;
  const app = (req as IncomingMessage & { app?: { get?(name: string): unknown } }).app;
  const fromApp = typeof app?.get === 'function' ? app.get('trust proxy fn') : undefined;
  return typeof fromApp === 'function' ? (fromApp as TrustProxy) : (learned ?? TRUST_NONE);
}

/**
 * Proxies of the node-http-proxy family (Vite's dev proxy, http-proxy-middleware)
 * forward an upgrade's scheme as `ws` or `wss`: the page's origin is then http or https.
 */
const FORWARDED_SCHEMES: ReadonlyMap<string, string> = new Map([
  ['ws', 'http'],
  ['wss', 'https'],
]);

/**
 * The origin the browser sent `req` to: scheme, host and port. Forwarded
 * headers count only when the direct peer is a trusted proxy.
 */
export function requestOrigin(req: IncomingMessage, trust: TrustProxy): string | null {
  const trusted = trust(req.socket.remoteAddress ?? '', 0);
  const encrypted = (req.socket as TLSSocket).encrypted === true;
  const forwarded = trusted ? firstValue(req.headers['x-forwarded-proto'])?.toLowerCase() : undefined;
  const proto = (forwarded && (FORWARDED_SCHEMES.get(forwarded) ?? forwarded)) || (encrypted ? 'https' : 'http');
  const host = (trusted && firstValue(req.headers['x-forwarded-host'])) || req.headers.host;
  if (!host || (proto !== 'http' && proto !== 'https')) return null;
  return normalizeOrigin(`${proto}://${host}`);
}

/**
 * Whether a browser page at `origin` may drive BackJob through `req`:
 * one of the allowed origins, or exactly the request's own. `null` origins
 * (sandboxed frames, file: pages) and garbage match nothing.
 *
 * @param learned the trust function of the Express app that served the shim's router, for upgrades Express never saw
 */
export function originAllowed(origin: string, req: IncomingMessage, policy: OriginPolicy, learned: TrustProxy | null = null): boolean {
  const normalized = normalizeOrigin(origin);
  if (!normalized) return false;
  if (policy.allowed?.has(normalized)) return true;
  return normalized === requestOrigin(req, trustFor(req, policy, learned));
}
