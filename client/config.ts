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
export type HeadersSource = Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);

/** Options of {@link configureBackjob}. */
export interface BackjobClientConfig {
  /** Headers added to every HTTP call the client makes (starts, connection tickets). Default none. */
  headers?: HeadersSource;
}

let config: BackjobClientConfig = {};

/** Sets the page's client options; later calls replace earlier ones field by field. */
export function configureBackjob(options: BackjobClientConfig): void {
  if (options.headers !== undefined && typeof options.headers !== 'function' && (typeof options.headers !== 'object' || options.headers === null)) {
    throw new TypeError('Expected `headers` to be an object of header values or a function returning one');
  }
  config = { ...config, ...options };
}

/** The configured extra headers for one call. */
export async function extraHeaders(): Promise<Record<string, string>> {
  const { headers } = config;
  return (typeof headers === 'function' ? await headers() : headers) ?? {};
}
