/**
 * The body of `POST /jobs`, schema-checked into a job spec a browser may
 * start (only launchable names and routes, and only the fields the protocol
 * has: shared/protocol.ts `StartRequest`), or into a batch of them.
 */
import type { StartRequest } from '../../shared/protocol.js';
import { MAX_CHILDREN } from '../core/families.js';
import { BackjobError, isBackjobError } from '../errors.js';
import { invalid, invalidOption, isPlainObject } from '../validate.js';
import type { BatchMemberSpec, JobSpec } from '../types.js';
import type { HttpHost } from './model.js';

/** Largest `POST /jobs` body in bytes. A start request is a name and a few params: anything bigger is a mistake or an attack. */
export const MAX_START_BODY = 16 * 1024;
/** Largest batch body in bytes: up to 1,000 members of a few params each. */
export const MAX_BATCH_BODY = 1024 * 1024;
const START_FIELDS = new Set(['name', 'route', 'method', 'params', 'body', 'bodyType']);
const BATCH_FIELDS = new Set(['batch', 'title']);

/** What a `POST /jobs` body starts: one job, or a batch. */
export type StartBody = { spec: JobSpec } | { batch: BatchMemberSpec[]; title?: string };

/** The limit of a body once read: a batch's own, every other body the single start's. */
export function startBodyLimit(body: unknown): number {
  return isPlainObject(body) && 'batch' in body ? MAX_BATCH_BODY : MAX_START_BODY;
}

/** The route job's query string: string values only, as a URL carries them. */
function toQuery(params: Record<string, unknown>): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  const scalar = (name: string, value: unknown): string => {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
    throw invalid(`Expected \`params.${name}\` to be a string, number or boolean (or a list of them) for a route job`);
  };
  for (const [name, value] of Object.entries(params)) {
    query[name] = Array.isArray(value) ? value.map((item) => scalar(name, item)) : scalar(name, value);
  }
  return query;
}

/** Schema-checks a `POST /jobs` body and turns it into a job spec a browser may start, or throws why not. */
export function parseStart(host: Pick<HttpHost, 'definition' | 'isLaunchableRoute'>, body: unknown): JobSpec {
  if (!isPlainObject(body)) throw invalid('Expected a JSON object');
  const unknown = Object.keys(body).filter((field) => !START_FIELDS.has(field));
  if (unknown.length > 0) throw invalid(`Unknown field ${JSON.stringify(unknown[0])}`);
  const request = body as StartRequest;
  if ((request.name === undefined) === (request.route === undefined)) throw invalid('Expected exactly one of `name` and `route`');
  if (request.params !== undefined && !isPlainObject(request.params)) throw invalid('Expected `params` to be an object');
  if (request.body !== undefined && !isPlainObject(request.body)) throw invalid('Expected `body` to be an object');

  if (request.name !== undefined) {
    if (typeof request.name !== 'string' || request.name.length === 0 || request.name.length > 200) {
      throw invalid('Expected `name` to be a job name');
    }
    if (request.method !== undefined || request.body !== undefined || request.bodyType !== undefined) {
      throw invalid('`method`, `body` and `bodyType` apply to route jobs only');
    }
    const definition = host.definition(request.name);
    if (!definition) throw new BackjobError('BACKJOB_ERR_UNKNOWN_JOB', `Unknown job ${JSON.stringify(request.name)}`);
    if (!definition.options.launchable) {
      throw new BackjobError('BACKJOB_ERR_NOT_LAUNCHABLE', `Job ${JSON.stringify(request.name)} is not launchable from a browser`);
    }
    return { name: request.name, params: request.params ?? {} };
  }

  if (typeof request.route !== 'string' || !request.route.startsWith('/') || request.route.length > 2048) {
    throw invalid('Expected `route` to be a path beginning with `/`');
  }
  if (request.method !== undefined && (typeof request.method !== 'string' || !/^[A-Za-z]{1,16}$/.test(request.method))) {
    throw invalid('Expected `method` to be an HTTP method');
  }
  if (request.bodyType !== undefined && request.bodyType !== 'form' && request.bodyType !== 'json') {
    throw invalid('Expected `bodyType` to be "form" or "json"');
  }
  if (!host.isLaunchableRoute(request.route)) {
    throw new BackjobError('BACKJOB_ERR_NOT_LAUNCHABLE', `Route ${request.route} is not launchable from a browser`);
  }
  return {
    route: request.route,
    method: request.method?.toUpperCase() ?? (request.body === undefined ? 'GET' : 'POST'),
    ...(request.params && { query: toQuery(request.params) }),
    ...(request.body && { body: request.body }),
    ...(request.bodyType && { bodyType: request.bodyType }),
  };
}

/** A member's error, saying which member it is, with the code and status the member's own start would have had. */
function ofMember(index: number, error: unknown): unknown {
  if (!isBackjobError(error)) return error;
  return new BackjobError(error.code, `Job ${index + 1} of the batch: ${error.message}`, { status: error.status });
}

/** Schema-checks one member of a batch: a single browser start, and its `weight`. */
function parseMember(host: Pick<HttpHost, 'definition' | 'isLaunchableRoute'>, member: unknown, index: number): BatchMemberSpec {
  try {
    if (!isPlainObject(member)) throw invalid('Expected a JSON object');
    if ('batch' in member || 'title' in member) throw invalid('Batches do not nest: a member is one job');
    const { weight, ...start } = member;
    const spec: BatchMemberSpec = parseStart(host, start);
    if (weight !== undefined) {
      if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) throw invalidOption('weight', 'a positive number', weight);
      spec.weight = weight;
    }
    return spec;
  } catch (error) {
    throw ofMember(index, error);
  }
}

/** Schema-checks a `POST /jobs` body: one start (see {@link parseStart}) or `{ batch: [...members], title? }`. */
export function parseStartBody(host: Pick<HttpHost, 'definition' | 'isLaunchableRoute'>, body: unknown): StartBody {
  if (!isPlainObject(body) || !('batch' in body)) return { spec: parseStart(host, body) };
  const unknown = Object.keys(body).filter((field) => !BATCH_FIELDS.has(field));
  if (unknown.length > 0) throw invalid(`Unknown field ${JSON.stringify(unknown[0])} (a batch has only \`batch\` and \`title\`)`);
  const { batch, title } = body;
  if (!Array.isArray(batch) || batch.length === 0 || batch.length > MAX_CHILDREN) {
    throw invalidOption('batch', `an array of 1 to ${MAX_CHILDREN} jobs`, batch);
  }
  if (title !== undefined && !(typeof title === 'string' && title.trim().length > 0 && title.length <= 200)) {
    throw invalidOption('title', 'a non-empty string of at most 200 characters', title);
  }
  const members = batch.map((member, index) => parseMember(host, member, index));
  return title === undefined ? { batch: members } : { batch: members, title };
}
