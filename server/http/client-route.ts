/**
 * The route that serves the client bundle (see client-bundle.ts) under
 * `basePath`, and no other file:
 *
 * - `/client.<hash>.js` is the bundle, cached for a year as `immutable`: its
 *   URL changes with its content.
 * - `/client.js` is the one line pages write. It is a one-statement module,
 *   `export * from './client.<hash>.js'`, revalidated on every load
 *   (`no-cache` and an ETag, so a 304 when nothing changed): a deploy reaches
 *   every page at once, and pages that load either URL share one module, so
 *   the elements are defined once.
 *
 * Another hash (an older or a newer version's) is not this bundle: it passes
 * through, to the app's own 404.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { clientBundle } from './client-bundle.js';
import type { ApiRoute } from './model.js';

/**
 * Whether the browser's cached copy is current: an `If-None-Match` naming the
 * ETag (weak or strong) or `*`, unless the request asks past its cache
 * (`Cache-Control: no-cache`), as HTTP caching has it.
 */
function fresh(headers: IncomingHttpHeaders, etag: string): boolean {
  const match = headers['if-none-match'];
  if (!match || /(?:^|,)\s*no-cache\s*(?:,|$)/i.test(String(headers['cache-control'] ?? ''))) return false;
  if (match.trim() === '*') return true;
  return match.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

export const clientRoute: ApiRoute = {
  method: 'GET',
  pattern: /^\/client(?:\.([0-9a-f]{12}))?\.js$/,
  params: ['hash'],
  async handle(req) {
    const { code, hash } = await clientBundle();
    const asked = req.params.hash;
    if (asked !== undefined && asked !== hash) return null;
    const etag = `"${hash}"`;
    const headers = {
      'content-type': 'text/javascript; charset=utf-8',
      'x-content-type-options': 'nosniff',
      etag,
      'cache-control': asked === undefined ? 'no-cache' : 'public, max-age=31536000, immutable',
    };
    if (fresh(req.headers, etag)) return { status: 304, headers, bytes: '' };
    return { status: 200, headers, bytes: asked === undefined ? `export * from './client.${hash}.js';\n` : code };
  },
};
