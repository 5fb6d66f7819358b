/**
 * Who is asking: the app's `identify` option, asked of a request, read as a
 * principal (a non-empty string) or nobody (`null`).
 */
import type { IncomingMessage } from 'node:http';
import { BackjobError } from '../errors.js';
import type { BackJobOptions } from '../types.js';

/** The principal of a request; `null` for nobody. */
export type Identify = (req: IncomingMessage) => Promise<string | null>;

/** Wraps the app's `identify` (absent: everyone is nobody) into the one reading of what it returns. */
export function createIdentify(identify: BackJobOptions['identify']): Identify {
  return async (req) => {
    if (!identify) return null;
    // An Express request, except a live-channel upgrade without a ticket: see `BackJobOptions.identify`.
    const principal: unknown = await identify(req as Parameters<typeof identify>[0]);
    if (typeof principal === 'string') return principal === '' ? null : principal;
    // Session ids are often numbers: read as "nobody", every user's jobs would merge and share tokens.
    if ((typeof principal === 'number' && Number.isFinite(principal)) || typeof principal === 'bigint') return String(principal);
    if (principal === null || principal === undefined || principal === false) return null;
    // The type only: the value (a whole user object, say) may hold what the caller must not see.
    const type = Array.isArray(principal) ? 'array' : typeof principal;
    throw new BackjobError('BACKJOB_ERR_IDENTIFY', `Expected \`identify\` to return a user id (string or number) or null, got a value of type ${type}`);
  };
}
