/**
 * Where a connection goes: the socket URL, the ticket endpoint beside it, and
 * the SSE stream beside it; and the ticket itself.
 */
import { MAX_TICKET_LENGTH, type TicketReply } from '../shared/protocol.js';
import { extraHeaders } from './config.js';

/** Ticket endpoint replies that say "not now" (a proxy during a deploy, an overloaded app): ask again, not without. */
const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);
/** How long a ticket request may take before it is given up (and asked again). */
const TICKET_TIMEOUT_MS = 10_000;
/** What `fetchTicket` answers for those, and for a request that timed out. */
export const UNAVAILABLE = Symbol('ticket unavailable');

/**
 * The WebSocket URL for `url`: absolute `ws(s)://` URLs as they are, `http(s)://`
 * ones with the matching scheme, and paths resolved against the page
 * (`ws:` on an `http:` page, `wss:` on `https:`). Default `/backjob/ws`.
 */
export function endpointUrl(url?: string): string {
  if (url && /^wss?:\/\//i.test(url)) return url;
  if (url && /^https?:\/\//i.test(url)) return url.replace(/^http/i, 'ws');
  const page = (globalThis as { location?: { href: string } }).location;
  if (!page) throw new TypeError('Outside a browser, getConnection() needs an absolute ws:// or wss:// URL');
  const resolved = new URL(url ?? '/backjob/ws', page.href);
  resolved.protocol = resolved.protocol === 'https:' ? 'wss:' : 'ws:';
  return resolved.href;
}

/** The HTTP endpoint `name` beside a socket endpoint: `wss://h/backjob/ws?t=1` → `https://h/backjob/<name>?t=1`; null when it is not `…/ws`. */
function besideSocket(url: string, name: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (!/\/ws$/.test(parsed.pathname)) return null;
  parsed.protocol = parsed.protocol === 'wss:' ? 'https:' : 'http:';
  // The query stays: an endpoint that needs one (a tenant, say) needs it for its tickets and stream too.
  parsed.pathname = parsed.pathname.replace(/\/ws$/, `/${name}`);
  return parsed.href;
}

/** The ticket endpoint beside a socket endpoint. */
export function ticketUrlOf(url: string): string | null {
  return besideSocket(url, 'tickets');
}

/** The SSE stream beside a socket endpoint. */
export function eventsUrlOf(url: string): string | null {
  return besideSocket(url, 'events');
}

/** Whether `url` is on the page's own origin (outside a browser: taken as yes). */
export function sameOrigin(url: string): boolean {
  const page = (globalThis as { location?: { origin: string } }).location;
  return !page || new URL(url).origin === page.origin;
}

/** The credentials mode of a call to `url`: the user's cookies go to the page's own origin, and to another the server allows (it answers with CORS). */
export function credentialsFor(url: string): RequestCredentials {
  return sameOrigin(url) ? 'same-origin' : 'include';
}

/**
 * A single-use ticket from the HTTP API, which runs inside the app's own
 * middleware (its session, its bearer token) where the upgrade does not.
 * Undefined when there is none to be had (an older server, a cross-origin
 * endpoint, the network): the socket then opens without, identified by its
 * cookies. {@link UNAVAILABLE} when the endpoint is there but cannot answer
 * right now: the attempt is retried.
 */
export async function fetchTicket(ticketUrl: string | null): Promise<string | undefined | typeof UNAVAILABLE> {
  if (!ticketUrl || typeof fetch !== 'function') return undefined;
  // A request that gets no answer (a keep-alive connection that died while the laptop slept) would
  // otherwise hold the connection in `connecting` for good: it is given up and the attempt retried.
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TICKET_TIMEOUT_MS);
  try {
    const response = await fetch(ticketUrl, {
      method: 'POST',
      headers: { ...(await extraHeaders()), accept: 'application/json' },
      credentials: credentialsFor(ticketUrl),
      signal: abort.signal,
    });
    if (TRANSIENT_STATUSES.has(response.status)) return UNAVAILABLE;
    if (!response.ok) return undefined;
    const reply = (await response.json()) as Partial<TicketReply> | null;
    // Only what a subprotocol token may hold: anything else would make the WebSocket constructor throw.
    const ticket = reply?.ticket;
    return typeof ticket === 'string' && ticket.length <= MAX_TICKET_LENGTH && /^[A-Za-z0-9._~-]+$/.test(ticket) ? ticket : undefined;
  } catch {
    return abort.signal.aborted ? UNAVAILABLE : undefined;
  } finally {
    clearTimeout(timer);
  }
}
