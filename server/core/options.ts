/**
 * Defaults and validation of `createBackJob` options. An invalid option
 * throws at construction, saying what was expected and what came, so a typo
 * fails at start-up instead of at the first job.
 */
import type { IncomingMessage } from 'node:http';
import { isJobId, JOB_STATUSES } from '../../shared/protocol.js';
import { booleanOption, checkOptionsObject, integerOption, invalidOption, nonNegativeOption, stringArrayOption } from '../validate.js';
import type { BackJobOptions, DefineOptions, ListFilter, StartOptions } from '../types.js';
import type { ResolvedOptions } from '../host.js';

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

/** The options without a default value. */
export const OTHER_OPTIONS = ['backend', 'key', 'identify', 'baseUrl', 'allowedOrigins', 'trustProxy'] as const;

const KNOWN = new Set<string>([...Object.keys(DEFAULT_OPTIONS), ...OTHER_OPTIONS]);

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

/**
 * Merges `options` over the defaults and checks every value. Throws a
 * `BackjobError` (`BACKJOB_ERR_INVALID`) for an unknown option or a bad value.
 */
export function resolveOptions(options: BackJobOptions = {}): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw invalidOption('options', 'an object', options);
  checkOptionsObject(options, KNOWN);
  const defined = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  const routes = stringArrayOption('routes', options.routes ?? DEFAULT_OPTIONS.routes, 'an array of paths beginning with `/`', (r) => r.startsWith('/'));
  const resolved: ResolvedOptions = { ...DEFAULT_OPTIONS, ...defined, routes: [...routes] };
  delete (resolved as BackJobOptions).backend;
  delete (resolved as BackJobOptions).key;
  delete (resolved as BackJobOptions).identify;
  // Resolved into the origin policy (server/access/origin.ts).
  delete (resolved as BackJobOptions).allowedOrigins;
  delete (resolved as BackJobOptions).trustProxy;

  checkTimeoutSeconds('errorTimeout', resolved.errorTimeout);
  checkTimeoutSeconds('timeout', resolved.timeout);
  for (const name of ['backlogDays', 'allBacklogDays'] as const) nonNegativeOption(name, resolved[name], 'number of days');
  for (const name of ['concurrency', 'maxLogLines'] as const) integerOption(name, resolved[name], 1);
  integerOption('maxWaitingPerOwner', resolved.maxWaitingPerOwner, 0, 'a non-negative integer (0 for no limit)');
  // A cut marker must still leave room for some of the line.
  integerOption('maxLineLength', resolved.maxLineLength, 80, 'an integer of at least 80 characters');
  for (const name of ['merge', 'worker'] as const) booleanOption(name, resolved[name]);
  if (typeof resolved.basePath !== 'string' || !/^\/[A-Za-z0-9._~\-/]*$/.test(resolved.basePath) || resolved.basePath.includes('//')) {
    throw invalidOption('basePath', 'a path beginning with `/`', resolved.basePath);
  }
  if (resolved.basePath.length > 1) resolved.basePath = resolved.basePath.replace(/\/$/, '');
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

/** Checks the options of `define()`. */
export function checkDefineOptions(options: DefineOptions): void {
  checkOptionsObject(options, ['launchable', 'title', 'retries', 'timeout', 'errorTimeout']);
  const { launchable, title, retries, timeout, errorTimeout } = options;
  if (launchable !== undefined) booleanOption('launchable', launchable);
  if (title !== undefined && !(typeof title === 'string' && title.trim().length > 0 && title.length <= 200)) {
    throw invalidOption('title', 'a non-empty string of at most 200 characters', title);
  }
  if (retries !== undefined) integerOption('retries', retries, 0);
  if (timeout !== undefined) checkTimeoutSeconds('timeout', timeout);
  if (errorTimeout !== undefined) checkTimeoutSeconds('errorTimeout', errorTimeout);
}

/** `start()` options after checks and defaults (`merge` from the shim's option). */
export interface CheckedStartOptions {
  /** The starting request; absent for the app's own starts and `'anonymous'`. */
  req: IncomingMessage | undefined;
  delay: number;
  merge: boolean;
  quota: boolean;
}

/** Checks the options of `start()`. */
export function checkStartOptions(options: StartOptions, defaultMerge: boolean): CheckedStartOptions {
  checkOptionsObject(options, ['as', 'delay', 'merge', 'quota']);
  const { as, delay = 0, merge = defaultMerge, quota = true } = options;
  if (as !== undefined && as !== 'anonymous' && !(typeof as === 'object' && as !== null && typeof as.headers === 'object')) {
    throw invalidOption('as', 'the starting request or "anonymous"', as);
  }
  nonNegativeOption('delay', delay, 'number of seconds');
  booleanOption('merge', merge);
  booleanOption('quota', quota);
  return { req: as === 'anonymous' ? undefined : as, delay, merge, quota };
}

/** Checks the filter of `list()`. */
export function checkListFilter(filter: ListFilter): ListFilter {
  checkOptionsObject(filter, ['owner', 'parent', 'status', 'limit', 'before'], 'filter');
  const { owner, parent, status, limit } = filter;
  if (parent !== undefined && parent !== null && !isJobId(parent)) throw invalidOption('parent', 'a job id or null', parent);
  if (owner !== undefined && owner !== null && typeof owner !== 'string') throw invalidOption('owner', 'a principal (string) or null', owner);
  if (status !== undefined && ![status].flat().every((s) => JOB_STATUSES.includes(s))) {
    throw invalidOption('status', `one or more of ${JOB_STATUSES.join(', ')}`, status);
  }
  if (limit !== undefined) integerOption('limit', limit, 1);
  return filter;
}
