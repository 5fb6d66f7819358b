/**
 * The client the router serves under `basePath`, run from the sources (the
 * bundle built on demand): `/client.js` revalidated, `/client.<hash>.js`
 * immutable, 304 on a matching ETag, and no other file. The packed package's
 * prebuilt bundle meets the same checks in e2e/packages.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { clientBundle } from './client-bundle.js';
import { startTestApp, type TestApp } from '../testing/http-test-app.js';

describe('the client bundle at /backjob/client.js', () => {
  let t: TestApp;
  let hash: string;

  before(async () => {
    t = await startTestApp({
      appRoutes: (app) => app.use((_req, res) => res.status(404).type('text/plain').send('the app does not know this')),
    });
    hash = (await clientBundle()).hash;
  });
  after(() => t.close());

  const get = (path: string, init: RequestInit = {}) => fetch(`${t.url}${path}`, init);
  // A conditional GET as a browser's cache sends it (fetch() would add `cache-control: no-cache`, which defeats a 304).
  const revalidate = async (path: string, etag: string) => {
    const [res] = (await once(httpGet(`${t.url}${path}`, { headers: { 'if-none-match': etag } }), 'response')) as [IncomingMessage];
    let body = '';
    for await (const chunk of res) body += chunk;
    return { status: res.statusCode, body };
  };

  test('/client.js is a one-line module re-exporting the hashed bundle, revalidated on every load', async () => {
    const res = await get('/backjob/client.js');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('etag'), `"${hash}"`);
    assert.equal(await res.text(), `export * from './client.${hash}.js';\n`);

    assert.deepEqual(await revalidate('/backjob/client.js', `"${hash}"`), { status: 304, body: '' });
    assert.equal((await revalidate('/backjob/client.js', '"0123456789ab"')).status, 200);
    assert.deepEqual(await revalidate(`/backjob/client.${hash}.js`, `"${hash}"`), { status: 304, body: '' });
  });

  test('/client.<hash>.js is the bundle, cached for a year as immutable, its hash that of its bytes', async () => {
    const res = await get(`/backjob/client.${hash}.js`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    const code = Buffer.from(await res.arrayBuffer());
    assert.equal(createHash('sha256').update(code).digest('hex').slice(0, 12), hash);
    // The elements, with Lit inside: no bare import a browser could not resolve.
    const text = code.toString();
    assert.match(text, /backjob-progress/);
    assert.doesNotMatch(text, /\bfrom\s*["'](?![./])/);
    assert.equal((await get(`/backjob/client.${hash}.js`, { method: 'HEAD' })).status, 200);
  });

  test('nothing else under the prefix is served: other names, other hashes, maps, sources, climbing out', async () => {
    for (const path of [
      '/backjob/client.000000000000.js',
      '/backjob/client.js.map',
      `/backjob/client.${hash}.js.map`,
      '/backjob/bundle.js',
      '/backjob/index.js',
      '/backjob/client/index.ts',
      '/backjob/dist/server/index.js',
      '/backjob/../package.json',
      '/backjob/%2e%2e/package.json',
      '/backjob/client.JS',
      '/client.js',
    ]) {
      const res = await get(path);
      assert.equal(res.status, 404, path);
      assert.equal(await res.text(), 'the app does not know this', path);
    }
    const post = await get('/backjob/client.js', { method: 'POST' });
    assert.equal(post.status, 404, 'only GET and HEAD');
  });

  test('under another basePath, the client moves with the API', async () => {
    const other = await startTestApp({ basePath: '/jobs-api' });
    try {
      assert.equal((await fetch(`${other.url}/jobs-api/client.js`)).status, 200);
      assert.equal((await fetch(`${other.url}/jobs-api/client.${hash}.js`)).status, 200);
      assert.equal((await fetch(`${other.url}/backjob/client.js`)).status, 404);
    } finally {
      await other.close();
    }
  });
});
