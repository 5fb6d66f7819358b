/**
 * The request a route job sends: its target checked and brought to the one
 * form that is both sent and signed, and its body as the bytes that are both
 * sent and digested.
 */
import { invalid } from '../validate.js';
import type { RouteTarget } from '../types.js';

const METHOD = /^[A-Z]{1,16}$/;

/**
 * Largest body of a route job, in bytes as sent. A job carries parameters, not
 * uploads; and the receiving side reads a signed request's body (to check its
 * digest) before the app's own parsers do, so it must not read more than they
 * would: a bigger body is not BackJob's.
 */
export const MAX_DISPATCH_BODY_BYTES = 64 * 1024;

/**
 * Checks a route target and brings it to the one form that is both sent and
 * signed: upper-case method, a percent-encoded path without dot segments.
 * Refuses anything that could address another host (`//evil.example`, `/\evil`).
 */
export function normalizeTarget(target: RouteTarget): RouteTarget {
  const method = typeof target.method === 'string' ? target.method.toUpperCase() : '';
  if (!METHOD.test(method)) throw invalid(`Expected the route's \`method\` to be an HTTP method, got ${JSON.stringify(target.method)}`);
  if (typeof target.path !== 'string' || !target.path.startsWith('/') || /[?#]/.test(target.path)) {
    throw invalid(`Expected the route to be a path beginning with \`/\`, without query string, got ${JSON.stringify(target.path)}`);
  }
  // URL parsing would drop them silently, calling (and signing) another path than the one given.
  if (/[\u0000-\u001f\u007f]/.test(target.path)) {
    throw invalid(`Expected the route path to contain no control characters, got ${JSON.stringify(target.path)}`);
  }
  const probe = new URL(target.path, 'http://backjob.invalid');
  if (probe.origin !== 'http://backjob.invalid' || target.path.startsWith('//')) {
    throw invalid(`Expected the route to be a path of this app, got ${JSON.stringify(target.path)}`);
  }
  const bodyType = target.bodyType ?? 'form';
  if (bodyType !== 'form' && bodyType !== 'json') {
    throw invalid(`Expected \`bodyType\` to be "form" or "json", got ${JSON.stringify(target.bodyType)}`);
  }
  if (target.body !== undefined && (method === 'GET' || method === 'HEAD')) {
    throw invalid(`A ${method} request has no body: put the values in \`query\``);
  }
  const route: RouteTarget = { method, path: probe.pathname };
  if (target.query && Object.keys(target.query).length > 0) route.query = target.query;
  if (target.body !== undefined) {
    route.body = target.body;
    route.bodyType = bodyType;
    let size: number;
    try {
      size = encodeBody(route)!.bytes.length;
    } catch (error) {
      throw invalid(`Expected the route's \`body\` to be serializable, got an error: ${(error as Error).message}`);
    }
    if (size > MAX_DISPATCH_BODY_BYTES) {
      throw invalid(`Expected the route's \`body\` to take at most ${MAX_DISPATCH_BODY_BYTES} bytes as sent, got ${size}: pass a reference to large data, not the data`);
    }
  }
  return route;
}

/** The body a route job sends, as the bytes that are both sent and digested, with its type; none without a body. */
export function encodeBody(route: RouteTarget): { bytes: Buffer; type: string } | undefined {
  if (route.body === undefined) return undefined;
  if (route.bodyType === 'json') return { bytes: Buffer.from(JSON.stringify(route.body)), type: 'application/json' };
  return { bytes: Buffer.from(formBody(route.body)), type: 'application/x-www-form-urlencoded' };
}

/** `?a=1&a=2` of a route's query (arrays repeat their name), or '' for none. */
export function queryString(query: RouteTarget['query']): string {
  if (!query) return '';
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    for (const item of Array.isArray(value) ? value : [value]) search.append(name, String(item));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** A form body as `URLSearchParams`: arrays repeat their key, objects travel as JSON, null/undefined are left out. */
function formBody(body: Record<string, unknown>): string {
  const form = new URLSearchParams();
  const add = (name: string, value: unknown) => {
    if (value === null || value === undefined) return;
    form.append(name, typeof value === 'object' ? JSON.stringify(value) : String(value));
  };
  for (const [name, value] of Object.entries(body)) {
    if (Array.isArray(value)) for (const item of value) add(name, item);
    else add(name, value);
  }
  return form.toString();
}
