/**
 * Turns the arguments of `start()` into the job the store creates: the
 * spec checked against its definition (or the route checked and its
 * credentials sealed), the owner and queue key, the quota, the merge key, and
 * the limits the job runs under.
 */
import { createHash } from 'node:crypto';
import { clientAddress } from '../access/client-address.js';
import type { Identify } from '../access/identify.js';
import type { Keys } from '../access/tokens.js';
import { BackjobError } from '../errors.js';
import { describeValue, invalidOption, isPlainObject } from '../validate.js';
import type { Definitions } from './definitions.js';
import { newJobId } from './job-id.js';
import { checkStartOptions } from './options.js';
import type { JobSpec, NewJob, RouteTarget, StartOptions } from '../types.js';
import type { ResolvedOptions, RouteDoor } from '../host.js';

/** What building a job needs. */
export interface JobSpecDeps {
  options: ResolvedOptions;
  definitions: Definitions;
  identify: Identify;
  keys: Keys;
  routes: Pick<RouteDoor, 'prepare'>;
}

/** JSON with object keys sorted, so equal values always hash the same. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function mergeKeyOf(parts: unknown[]): string {
  return createHash('sha256').update(canonicalJson(parts)).digest('base64url');
}

/** Who a start is for: the owner, the queue key, and how many of its jobs may already wait (0: no limit). */
export interface Starter {
  owner: string | null;
  queueKey: string;
  maxWaiting: number;
}

/** Who `startOptions` start jobs for. */
export async function starterOf(deps: JobSpecDeps, startOptions: StartOptions): Promise<Starter> {
  const { req, quota } = checkStartOptions(startOptions, deps.options.merge);
  const owner = req ? await deps.identify(req) : null;
  // Starts without a request (the app's own) share one turn in the queue and have no quota.
  const queueKey = !req ? 'app' : owner !== null ? `user:${owner}` : `addr:${deps.keys.addressKey(clientAddress(req))}`;
  return { owner, queueKey, maxWaiting: req && quota ? deps.options.maxWaitingPerOwner : 0 };
}

/**
 * A job spec as it is at the call. `start` and `spawn` read theirs only after
 * an await (the store opening, `identify`), and a caller starting jobs in a
 * loop may reuse one params object and change it meanwhile: every job would
 * get the last value (and merge into one). Params, query and body are cloned
 * here, at the call; a value that cannot be cloned (a function inside) is left
 * as it is, for validation to judge as before.
 */
export function takeSpec<T>(spec: T): T {
  if (!isPlainObject(spec)) return spec; // not a spec: validation refuses it as it is
  const taken: Record<string, unknown> = { ...spec };
  for (const key of ['params', 'query', 'body']) {
    if (taken[key] === undefined) continue;
    try {
      taken[key] = structuredClone(taken[key]);
    } catch {
      // Not cloneable: JSON validation below says what is wrong with it, or drops it, as it always did.
    }
  }
  return taken as T;
}

/**
 * The job to create, and how many of its owner's jobs may already wait (0:
 * no limit). `starter`, when known already (a batch's members, a parent's
 * children), is who the job is for.
 */
export async function buildJob(
  deps: JobSpecDeps,
  spec: JobSpec,
  startOptions: StartOptions,
  starter?: Starter,
): Promise<{ job: NewJob; maxWaiting: number }> {
  const { options, definitions } = deps;
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw invalidOption('spec', '{ name, params } or { route, … }', spec);
  const { req, delay, merge } = checkStartOptions(startOptions, options.merge);
  const { owner, queueKey, maxWaiting } = starter ?? (await starterOf(deps, startOptions));
  const now = Date.now();
  const common = { id: newJobId(now), owner, queueKey, runAt: now + delay * 1000, runner: null, createdAt: now };

  if ('name' in spec && spec.name !== undefined) {
    const definition = definitions.get(spec.name);
    if (!definition) {
      throw new BackjobError('BACKJOB_ERR_UNKNOWN_JOB', `Unknown job ${describeValue(spec.name)}: define it with backjob.define()`);
    }
    try {
      JSON.stringify(spec.params);
    } catch (error) {
      throw new BackjobError('BACKJOB_ERR_INVALID', `Expected \`params\` to be JSON-serializable (${(error as Error).message})`);
    }
    const { retries = 0, timeout = options.timeout, errorTimeout = options.errorTimeout, title } = definition.options;
    const job: NewJob = {
      ...common,
      name: spec.name,
      ...(title === undefined ? {} : { title }),
      kind: 'handler',
      params: spec.params,
      mergeKey: merge ? mergeKeyOf(['handler', spec.name, spec.params ?? null, owner]) : null,
      retriesLeft: retries,
      timeoutMs: timeout * 1000,
      errorTimeout,
    };
    return { job, maxWaiting };
  }
  if ('route' in spec && spec.route !== undefined) {
    const target: RouteTarget = { method: spec.method ?? 'GET', path: spec.route };
    if (spec.query !== undefined) target.query = spec.query;
    if (spec.body !== undefined) target.body = spec.body;
    if (spec.bodyType !== undefined) target.bodyType = spec.bodyType;
    const { route, credentials, credentialsDigest } = deps.routes.prepare(target, req);
    const job: NewJob = {
      ...common,
      name: `${route.method} ${route.path}`,
      kind: 'route',
      route,
      mergeKey: merge ? mergeKeyOf(['route', route, owner, credentialsDigest ?? null]) : null,
      retriesLeft: 0,
      timeoutMs: options.timeout * 1000,
      errorTimeout: options.errorTimeout,
      ...(credentials === undefined ? {} : { credentials }),
    };
    return { job, maxWaiting };
  }
  throw invalidOption('spec', '{ name, params } or { route, … }', spec);
}
