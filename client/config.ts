/**
 * Page-wide settings of the client: what every HTTP call to the shim carries
 * besides the page's cookies. Apps whose users sign in with a bearer token
 * set it here once; the launcher's starts and the live channel's tickets
 * then go out with it.
 *
 * @example
 * configureBackjob({ headers: () => ({ authorization: `Bearer ${auth.token}` }) });
 */

/** Extra request headers: fixed, or asked for at each call (a token that refreshes). */
import { checkTransport, type TransportChoice } from './transport.js';

export type HeadersSource = Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);

/** Options of {@link configureBackjob}. */
export interface BackjobClientConfig {
  /** Headers added to every HTTP call the client makes (starts, connection tickets). Default none. */
  headers?: HeadersSource;
  /**
   * How the live channel connects: `auto` (default) tries the WebSocket and
   * falls back to Server-Sent Events when sockets do not open (a proxy that
   * refuses upgrades); `websocket` or `sse` use only that one.
   */
  transport?: TransportChoice;
}

let config: BackjobClientConfig = {};

/** Sets the page's client options; later calls replace earlier ones field by field. */
export function configureBackjob(options: BackjobClientConfig): void {
  if (options.headers !== undefined && typeof options.headers !== 'function' && (typeof options.headers !== 'object' || options.headers === null)) {
    throw new TypeError('Expected `headers` to be an object of header values or a function returning one');
  }
  checkTransport(options.transport);
  config = { ...config, ...options };
}

/** The configured extra headers for one call. */
export async function extraHeaders(): Promise<Record<string, string>> {
  const { headers } = config;
  return (typeof headers === 'function' ? await headers() : headers) ?? {};
}

/** The configured live transport. */
export function configuredTransport(): TransportChoice {
  return config.transport ?? 'auto';
}
