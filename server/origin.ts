import type { IncomingHttpHeaders } from 'node:http';

/**
 * Whether a browser's `Origin` names the host the request was sent to: the
 * `Host` header, or the first `X-Forwarded-Host` a reverse proxy that
 * rewrites `Host` adds. A page on another site cannot set either header (a
 * browser sets them), so this still refuses it. `null` origins (sandboxed
 * frames, file: pages) and garbage match nothing.
 */
export function isSameOrigin(origin: string, headers: IncomingHttpHeaders): boolean {
  let host: string;
  try {
    host = new URL(origin).host.toLowerCase();
  } catch {
    return false;
  }
  const forwarded = headers['x-forwarded-host']?.toString().split(',')[0]?.trim().toLowerCase();
  return host === (headers.host ?? '').toLowerCase() || (forwarded !== undefined && host === forwarded);
}
