/**
 * A network that blocks WebSockets, end to end: Chromium reaches the demo
 * through an HTTP proxy that refuses every upgrade (403). The elements fall
 * back to Server-Sent Events by themselves, show live progress and the full
 * log, and survive a restart of the proxy without losing a line.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { E2E_TIMEOUT, closeServer, launchBrowser, startDemoProcess, tempDir, waitUntil, type DemoProcess } from './harness.js';

const temp = tempDir();
let browser: Browser;
let demo: DemoProcess;
let proxy: Server;
let proxyPort = 0;
const seen = { upgrades: 0, streams: 0, posts: 0 };

/** A plain forwarding proxy to the demo that answers every upgrade 403, as corporate proxies do. */
async function startProxy(port: number): Promise<void> {
  proxy = createServer((req, res) => {
    if (req.url?.startsWith('/backjob/events')) {
      if (req.method === 'GET') seen.streams += 1;
      else seen.posts += 1;
    }
    const upstream = request({ host: '127.0.0.1', port: demo.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  proxy.on('upgrade', (_req, socket) => {
    seen.upgrades += 1;
    socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  proxy.listen(port, '127.0.0.1');
  await once(proxy, 'listening');
  proxyPort = (proxy.address() as AddressInfo).port;
}

before(async () => {
  browser = await launchBrowser();
  demo = await startDemoProcess({ dbFile: temp.dbFile, stepMs: 150 });
  await startProxy(0);
});

after(async () => {
  await browser?.close();
  await closeServer(proxy);
  await demo?.stop();
  temp.remove();
});

test('behind a proxy that refuses upgrades, the elements go over SSE, and a proxy restart loses no line', async () => {
  const page = await browser.newPage();
  page.setDefaultTimeout(E2E_TIMEOUT);
  const origin = `http://127.0.0.1:${proxyPort}`;
  await page.goto(`${origin}/failures`);
  await page.getByRole('button', { name: 'Rebuild the archive' }).click();
  await page.locator('#archive backjob-progress[status="running"]').waitFor();
  const { jobId, token } = await page
    .locator('#archive')
    .evaluate((el) => ({ jobId: (el as HTMLElement & { jobId: string }).jobId, token: (el as HTMLElement & { token: string }).token }));

  await page.goto(`${origin}/watch/${jobId}?token=${encodeURIComponent(token)}`);
  const lines = page.locator('main backjob-log [part="line"]');
  const bar = page.locator('main [role="progressbar"]');
  await waitUntil(async () => (await lines.count()) >= 3, 'the watch page shows 3 lines over SSE');
  assert.ok(seen.upgrades >= 1, 'the page tried the WebSocket first');
  assert.ok(seen.streams >= 1, 'and then opened an event stream');
  const progressBefore = Number(await bar.getAttribute('aria-valuenow'));
  await waitUntil(async () => Number(await bar.getAttribute('aria-valuenow')) > progressBefore, 'progress moves live');

  // The proxy restarts: every connection through it is cut, and for a moment nothing answers.
  const countBefore = await lines.count();
  const streamsBefore = seen.streams;
  await closeServer(proxy);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  await startProxy(proxyPort);
  await waitUntil(async () => seen.streams > streamsBefore, 'the page reopens its stream through the new proxy');
  await waitUntil(async () => (await lines.count()) >= countBefore + 5, 'lines keep arriving after the restart');

  const text = await lines.allInnerTexts();
  assert.deepEqual(
    text,
    text.map((_, i) => `Batch ${i + 1} archived`),
    'lines 1…n, none missing, none twice',
  );
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.locator('main backjob-progress[status="canceled"]').waitFor();
  assert.ok(seen.posts >= 1, 'client messages (the cancel) went by POST');
  await page.close();
});
