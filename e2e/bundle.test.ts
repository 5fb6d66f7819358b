/**
 * The single-file bundle as a plain-HTML page meets it: an ordinary Express
 * app with BackJob embedded, and a page whose only script is the one the
 * router serves, `<script type="module" src="/backjob/client.js">` (bundled
 * from the sources here, as a run from the repository does; the packed
 * package's prebuilt copy is checked by e2e/packages.test.ts).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import express from 'express';
import type { Browser } from 'playwright-core';
import { createBackJob, memory } from '../server/index.js';
import type { BackJob } from '../server/types.js';
import { E2E_TIMEOUT, launchBrowser } from './harness.js';

let backjob: BackJob;
let server: Server;
let browser: Browser;
let url: string;

before(async () => {
  backjob = createBackJob({ backend: memory() });
  backjob.define(
    'count',
    async (job, params: { lines?: number }) => {
      const lines = Number(params?.lines ?? 5);
      for (let i = 1; i <= lines; i++) {
        job.log(`line ${i}`);
        job.update({ progress: (i / lines) * 100, text: `Step ${i} of ${lines}` });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    { launchable: true },
  );
  await backjob.ready;

  const app = express();
  app.use(backjob.router());
  const page = (body: string) =>
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Plain page</title>` +
    `<script type="module" src="/backjob/client.js"></script></head><body><main>${body}</main></body></html>`;
  app.get('/launch', (_req, res) => {
    res.type('html').send(page('<backjob-launcher name="count" params=\'{"lines": 8}\' show-log>Count</backjob-launcher>'));
  });
  app.get('/rendered', async (req, res) => {
    const { id, token } = await backjob.start({ name: 'count', params: { lines: 6 } }, { as: req });
    res.type('html').send(page(`<backjob-progress job-id="${id}" token="${token}"></backjob-progress><backjob-log job-id="${id}" token="${token}"></backjob-log>`));
  });
  server = createServer(app);
  backjob.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await backjob?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

test('a plain page with one script tag watches a job the server started while rendering', async () => {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${url}/rendered`);
  await page.locator('backjob-progress[status="completed"]').waitFor({ timeout: E2E_TIMEOUT });
  assert.equal(await page.locator('backjob-progress [role="progressbar"]').getAttribute('aria-valuenow'), '100');
  await page.waitForFunction(() => document.querySelector('backjob-log')?.text.length === 6, null, { timeout: E2E_TIMEOUT });
  assert.deepEqual(await page.evaluate(() => document.querySelector('backjob-log')!.text), ['line 1', 'line 2', 'line 3', 'line 4', 'line 5', 'line 6']);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a plain page with one script tag launches a job from a button', async () => {
  const page = await browser.newPage();
  await page.goto(`${url}/launch`);
  await page.getByRole('button', { name: 'Count' }).click();
  await page.locator('backjob-launcher backjob-progress[status="completed"]').waitFor({ timeout: E2E_TIMEOUT });
  await page.waitForFunction(
    () => document.querySelector('backjob-launcher')?.shadowRoot?.querySelector('backjob-log')?.text.length === 8,
    null,
    { timeout: E2E_TIMEOUT },
  );
  await page.close();
});
