/**
 * Connection tickets: how the live channel learns who is asking through the
 * app's own stack. A WebSocket upgrade never passes through the app's
 * middleware (no `req.session`, no passport), and a browser cannot set an
 * `Authorization` header on it. So the page first asks the HTTP API for a
 * ticket — that request runs inside the app's middleware, where `identify`
 * sees what every route sees — and presents it on the socket (see
 * `TICKET_PROTOCOL_PREFIX`). The convention of Pusher, Ably and Centrifugo:
 * short-lived and single-use.
 *
 * A ticket is the principal, an expiry and a nonce, sealed (AES-256-GCM)
 * under a key derived for this purpose alone: any process with the BackJob
 * key can read it, so a socket may land on another web process than the one
 * that issued it, and it says nothing to whoever sees it. The nonce is
 * claimed once (across processes where the backend can).
 */
import { randomBytes } from 'node:crypto';
import { MAX_TICKET_LENGTH } from '../../shared/protocol.js';
import { BackjobError } from '../errors.js';
import { seal, unseal } from './signing.js';

/** How long a ticket may wait between the HTTP call that issued it and the socket that presents it. */
export const TICKET_TTL_MS = 30_000;

/** What a valid ticket says. */
export interface TicketClaim {
  principal: string | null;
  /** Claimed once: a second socket with the same ticket is refused. */
  nonce: string;
}

/**
 * A ticket for `principal` (null: nobody), valid for {@link TICKET_TTL_MS} from `now`.
 * Throws for a principal too long to fit in {@link MAX_TICKET_LENGTH}: a ticket the socket
 * would refuse must not be handed out.
 */
export function issueTicket(key: Buffer, principal: string | null, now = Date.now()): string {
  const ticket = seal(key, JSON.stringify({ p: principal, e: now + TICKET_TTL_MS, n: randomBytes(12).toString('base64url') }), 'live ticket v1');
  if (ticket.length > MAX_TICKET_LENGTH) {
    throw new BackjobError('BACKJOB_ERR_IDENTIFY', `The user id \`identify\` returned is too long for a connection ticket (${principal!.length} characters)`, { status: 500 });
  }
  return ticket;
}

/** What `ticket` says, or null when it is forged, altered, made with another key, or expired. */
export function readTicket(key: Buffer, ticket: string, now = Date.now()): TicketClaim | null {
  if (ticket.length > MAX_TICKET_LENGTH) return null;
  const opened = unseal(key, ticket, 'live ticket v1');
  if (opened === null) return null;
  try {
    const { p, e, n } = JSON.parse(opened) as { p: unknown; e: unknown; n: unknown };
    if (typeof e !== 'number' || e < now || typeof n !== 'string') return null;
    if (p !== null && typeof p !== 'string') return null;
    return { principal: p, nonce: n };
  } catch {
    return null;
  }
}
