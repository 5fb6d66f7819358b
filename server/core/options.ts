/**
 * Defaults and validation of `createBackJob` options. An invalid option
 * throws at construction, saying what was expected and what came, so a typo
 * fails at start-up instead of at the first job.
 */
import { BackjobError } from '../errors.js';
import { invalidOption } from '../validate.js';
import type { BackJobOptions, ResolvedOptions } from '../types.js';

/** The defaults, documented on {@link BackJobOptions}. */
export const DEFAULT_OPTIONS: ResolvedOptions = {
  basePath: '/backjob',
  routes: [],
  errorTimeout: 0,
  timeout: 0,
  concurrency: 4,
  merge: true,
  // Enough for a person queueing a batch from a page (a report per month of a year, and then some),
  // few enough that one address cannot pile up more than a short backlog in the store. The quota
  // bounds what one owner piles up; what keeps everyone else's wait short is the queue being fair
  // across owners (a flood costs another owner about one job per slot), so it can stay generous.
  maxWaitingPerOwner: 20,
  backlogDays: 30,
  allBacklogDays: 90,
  maxLogLines: 10_000,
  maxLineLength: 4_096,
  worker: true,
};

const KNOWN = new Set<string>([...Object.keys(DEFAULT_OPTIONS), 'backend', 'key', 'identify', 'baseUrl', 'allowedOrigins', 'trustProxy']);

function isNonNegativeNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** The longest delay a Node timer holds (about 24.8 days); a longer one would fire after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Checks a `timeout` or `errorTimeout`: seconds, 0 for none, at most what one timer holds. */
export function checkTimeoutSeconds(name: string, value: unknown): void {
  if (!(isNonNegativeNumber(value) && value * 1000 <= MAX_TIMER_MS)) {
    throw invalidOption(name, `a number of seconds from 0 (none) to ${Math.floor(MAX_TIMER_MS / 1000)} (24.8 days)`, value);
  }
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

/**
 * Merges `options` over the defaults and checks every value. Throws a
 * `BackjobError` (`BACKJOB_ERR_INVALID`) for an unknown option or a bad value.
 */
export function resolveOptions(options: BackJobOptions = {}): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw invalidOption('options', 'an object', options);
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) throw new BackjobError('BACKJOB_ERR_INVALID', `Unknown option \`${name}\``);
  }
  const defined = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  if (!Array.isArray(options.routes ?? [])) throw invalidOption('routes', 'an array of paths beginning with `/`', options.routes);
  const resolved: ResolvedOptions = { ...DEFAULT_OPTIONS, ...defined, routes: [...(options.routes ?? DEFAULT_OPTIONS.routes)] };
  delete (resolved as BackJobOptions).backend;
  delete (resolved as BackJobOptions).key;
  delete (resolved as BackJobOptions).identify;
  // Resolved into the origin policy (server/access/origin.ts).
  delete (resolved as BackJobOptions).allowedOrigins;
  delete (resolved as BackJobOptions).trustProxy;

  checkTimeoutSeconds('errorTimeout', resolved.errorTimeout);
  checkTimeoutSeconds('timeout', resolved.timeout);
  for (const name of ['backlogDays', 'allBacklogDays'] as const) {
    if (!isNonNegativeNumber(resolved[name])) throw invalidOption(name, 'a non-negative number of days', resolved[name]);
  }
  for (const name of ['concurrency', 'maxLogLines'] as const) {
    if (!isPositiveInteger(resolved[name])) throw invalidOption(name, 'a positive integer', resolved[name]);
  }
  if (!(Number.isSafeInteger(resolved.maxWaitingPerOwner) && resolved.maxWaitingPerOwner >= 0)) {
    throw invalidOption('maxWaitingPerOwner', 'a non-negative integer (0 for no limit)', resolved.maxWaitingPerOwner);
  }
  // A cut marker must still leave room for some of the line.
  if (!(Number.isSafeInteger(resolved.maxLineLength) && resolved.maxLineLength >= 80)) {
    throw invalidOption('maxLineLength', 'an integer of at least 80 characters', resolved.maxLineLength);
  }
  for (const name of ['merge', 'worker'] as const) {
    if (typeof resolved[name] !== 'boolean') throw invalidOption(name, 'a boolean', resolved[name]);
  }
  if (typeof resolved.basePath !== 'string' || !/^\/[A-Za-z0-9._~\-/]*$/.test(resolved.basePath) || resolved.basePath.includes('//')) {
    throw invalidOption('basePath', 'a path beginning with `/`', resolved.basePath);
  }
  if (resolved.basePath.length > 1) resolved.basePath = resolved.basePath.replace(/\/$/, '');
  if (!resolved.routes.every((r) => typeof r === 'string' && r.startsWith('/'))) {
    throw invalidOption('routes', 'an array of paths beginning with `/`', options.routes);
  }
  if (resolved.baseUrl !== undefined) {
    let url: URL | null = null;
    try {
      url = new URL(resolved.baseUrl);
    } catch {
      // reported below
    }
    // Only an origin: route paths are signed as the app receives them, so a path prefix (an app
    // mounted under /app behind a proxy) would be dropped or break every signature.
    const originOnly = url && url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password;
    if (typeof resolved.baseUrl !== 'string' || !url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !originOnly) {
      throw invalidOption('baseUrl', 'an http(s) origin, without a path, such as `http://127.0.0.1:3000`', resolved.baseUrl);
    }
    resolved.baseUrl = url.origin;
  }
  if (options.key !== undefined && !(typeof options.key === 'string' && Buffer.byteLength(options.key) >= 16)) {
    throw invalidOption('key', 'a string of at least 16 bytes', typeof options.key === 'string' ? `${options.key.length} characters` : options.key);
  }
  if (options.identify !== undefined && typeof options.identify !== 'function') {
    throw invalidOption('identify', 'a function (req) => principal', options.identify);
  }
  const backend = options.backend;
  if (backend !== undefined && !(typeof backend === 'object' && backend !== null && 'store' in backend && 'bus' in backend && 'queue' in backend)) {
    throw invalidOption('backend', 'a backend such as `sqlite()` or `memory()`', backend);
  }
  return resolved;
}
