/** What browsers may launch: handler jobs defined `launchable`, and the route paths of the `routes` option. */

/** Whether `path` matches one of `routes` (exact paths, or a prefix ending in `*`), refusing paths that could escape a prefix. */
export function isLaunchableRoute(routes: readonly string[], path: string): boolean {
  // URL parsing silently drops tabs and newlines and trims trailing spaces, so `/reports/\t../admin` would
  // pass every check below and still be sent as `/admin`. A path a browser sends never contains them raw.
  if (typeof path !== 'string' || !path.startsWith('/') || /[\u0000-\u0020\u007f]/.test(path)) return false;
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return false;
  }
  // A prefix rule must not be escaped with dot segments or odd separators: `/reports/../admin`.
  if (/[?#\\]|\/\.\.?(\/|$)|\/\//.test(decoded)) return false;
  return routes.some((rule) => (rule.endsWith('*') ? path.startsWith(rule.slice(0, -1)) : path === rule));
}
