/**
 * How the API answers: every error mapped to its status and
 * `{ error: { code, message } }`, and an {@link ApiReply} written to Node's
 * response, the one thing every adapter ends with.
 */
import type { ServerResponse } from 'node:http';
import type { ErrorReply } from '../../shared/protocol.js';
import { isBackjobError } from '../errors.js';
import type { ApiReply } from './model.js';

const errorOf = (status: number, code: string, message: string): ApiReply => ({ status, json: { error: { code, message } } satisfies ErrorReply });

/**
 * The answer to an error of the API (or of dispatch recognition): a
 * `BackjobError`'s status, code and message (and `Retry-After` when it has
 * one); a path that is not valid percent-encoding is the client's 400; any
 * other error says nothing about internals: 500 `BACKJOB_ERR_INTERNAL`.
 */
export function errorReply(error: unknown): ApiReply {
  if (isBackjobError(error)) {
    const reply = errorOf(error.status, error.code, error.message);
    if (error.retryAfter !== undefined) reply.headers = { 'retry-after': String(error.retryAfter) };
    return reply;
  }
  if (error instanceof URIError) return errorOf(400, 'BACKJOB_ERR_INVALID', 'The request path is not valid percent-encoding');
  return errorOf(500, 'BACKJOB_ERR_INTERNAL', 'Internal error');
}

/**
 * The headers and body a reply goes out with. JSON is live state and may be
 * personal: never cached by a browser or a proxy.
 */
export function encodeReply(reply: ApiReply): { status: number; headers: Record<string, string>; body: Buffer | string } {
  if (reply.bytes !== undefined) return { status: reply.status, headers: { ...reply.headers }, body: reply.bytes };
  const body = reply.json === undefined ? '' : JSON.stringify(reply.json);
  const headers: Record<string, string> = { 'cache-control': 'no-store', ...reply.headers };
  if (reply.json !== undefined) headers['content-type'] = 'application/json; charset=utf-8';
  return { status: reply.status, headers, body };
}

/** Writes `reply` to `res` (no body for HEAD, which Node leaves out by itself). */
export function writeReply(res: ServerResponse, reply: ApiReply): void {
  const { status, headers, body } = encodeReply(reply);
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  if (status !== 204 && status !== 304) res.setHeader('content-length', Buffer.byteLength(body));
  res.end(status === 204 || status === 304 ? undefined : body);
}
