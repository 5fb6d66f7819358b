/**
 * e2e/apps/vue-proxy in Chromium: a Vue 3 page served by Vite's dev server,
 * whose proxy (`changeOrigin: true`, `ws: true`) forwards `/api` and
 * `/backjob` to an Express API with express-session. Every call the page
 * makes, HTTP and WebSocket, goes to Vite's origin and through the proxy.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import WebSocket from 'ws';
import { sqlite, type BackJob } from 'backjob';
import { SUBPROTOCOL, TICKET_PROTOCOL_PREFIX } from '../shared/protocol.js';
import { createApi } from './apps/vue-proxy/api.js';
import { defineAppTests, launch, listJobsIn, type AppDriver } from './app-flows.js';
import { E2E_TIMEOUT, closeServer, launchBrowser, listen, tempDir } from './harness.js';

const appDir = fileURLToPath(new URL('./apps/vue-proxy/', import.meta.url));
const temp = tempDir();
let api: Server;
let backjob: BackJob;
let vite: ViteDevServer;
let browser: Browser;
/** The page's origin: Vite's dev server. */
let pageOrigin: string;

/** A port nobody listens on right now, for Vite (whose origin the API must know before it starts). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer().once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const driver: AppDriver = {
  async signIn(context, user) {
    const page = await context.newPage();
    await page.goto(`${pageOrigin}/`);
    await page.getByLabel('User').fill(user);
    await page.getByLabel('Password').fill(`${user}-secret`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText(`Signed in as ${user}.`).waitFor();
    return page;
  },
  // The session cookie (set through the proxy, on Vite's origin) signs in every page of the context.
  async watch(context, user, id) {
    const page = await context.newPage();
    await page.goto(`${pageOrigin}/`);
    await page.getByText(`Signed in as ${user}.`).waitFor();
    await page.getByLabel('Job id').fill(id);
    await page.getByRole('button', { name: 'Watch' }).click();
    return page;
  },
  listJobs: (page) => listJobsIn(page),
};

before(async () => {
  const port = await freePort();
  pageOrigin = `http://127.0.0.1:${port}`;
  ({ server: api, backjob } = createApi({ devOrigin: pageOrigin, backend: sqlite({ file: temp.dbFile }) }));
  process.env.API_URL = await listen(api);
  browser = await launchBrowser();
  vite = await createServer({
    root: appDir,
    configFile: join(appDir, 'vite.config.ts'),
    cacheDir: join(temp.dir, 'vite'),
    logLevel: 'warn',
    server: { host: '127.0.0.1', port, strictPort: true },
  });
  await vite.listen();
  // Vite bundles the page's dependencies on its first visit: done here, not inside a test's time.
  const page = await browser.newPage();
  await page.goto(`${pageOrigin}/`);
  await page.getByRole('button', { name: 'Sign in' }).waitFor({ timeout: 60_000 });
  await page.close();
});

after(async () => {
  await browser?.close();
  await vite?.close();
  await backjob?.close();
  await closeServer(api);
  delete process.env.API_URL;
  temp.remove();
});

defineAppTests(() => ({ browser, driver }), 'cookie');

test("the page's starts and its WebSocket go to Vite's origin, through the proxy", async () => {
  const context = await browser.newContext();
  context.setDefaultTimeout(E2E_TIMEOUT);
  const sockets: Array<{ url: string; frames: number }> = [];
  const starts: Array<{ url: string; status: number }> = [];
  context.on('page', (page) => {
    page.on('websocket', (ws) => {
      if (!ws.url().endsWith('/backjob/ws')) return; // Vite's own (HMR)
      const socket = { url: ws.url(), frames: 0 };
      sockets.push(socket);
      ws.on('framereceived', () => socket.frames++);
    });
  });
  context.on('response', (response) => {
    if (response.request().method() === 'POST' && response.url().endsWith('/backjob/jobs')) starts.push({ url: response.url(), status: response.status() });
  });
  const page = await driver.signIn(context, 'ada');
  const id = await launch(page, 'Build the report');
  await page.getByRole('status').filter({ hasText: `Report ${id} is ready.` }).waitFor();
  assert.deepEqual(starts, [{ url: `${pageOrigin}/backjob/jobs`, status: 202 }]);
  assert.equal(sockets.length, 1);
  assert.equal(sockets[0]!.url, `${pageOrigin.replace('http', 'ws')}/backjob/ws`);
  assert.ok(sockets[0]!.frames >= 2, `the socket carried the job's events (${sockets[0]!.frames} frames)`);
  await context.close();
});

test('through the proxy, the API admits the dev page and no other origin', async () => {
  const start = (origin: string) =>
    fetch(`${pageOrigin}/backjob/jobs`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'report' }) });
  const refused = await start('http://127.0.0.1:1');
  assert.equal(refused.status, 403);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'BACKJOB_ERR_CROSS_ORIGIN');
  assert.equal((await start(pageOrigin)).status, 202);

  // As the page opens it: with a ticket from the HTTP API (the upgrade itself carries no session).
  const ticketReply = await fetch(`${pageOrigin}/backjob/tickets`, { method: 'POST', headers: { origin: pageOrigin } });
  assert.equal(ticketReply.status, 200);
  const { ticket } = (await ticketReply.json()) as { ticket: string };
  const handshake = (origin: string) =>
    new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${pageOrigin.replace('http', 'ws')}/backjob/ws`, [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${ticket}`], { headers: { origin } });
      ws.once('open', () => (ws.close(), resolve(101)));
      ws.once('unexpected-response', (_req, res) => (res.resume(), ws.terminate(), resolve(res.statusCode ?? 0)));
      ws.once('error', reject);
    });
  assert.equal(await handshake('http://127.0.0.1:1'), 403, 'refused for its origin, before the ticket is looked at');
  assert.equal(await handshake(pageOrigin), 101);
});
