/**
 * e2e/apps/express4 in Chromium: BackJob's router in an Express 4 app with
 * express-session, pages server-rendered, the client bundle from the app's origin.
 */
import type { Server } from 'node:http';
import { after, before } from 'node:test';
import type { Browser } from 'playwright-core';
import { sqlite, type BackJob } from 'backjob';
import { createApp } from './apps/express4/app.js';
import { defineAppTests, serverRenderedDriver } from './app-flows.js';
import { closeServer, launchBrowser, listen, tempDir } from './harness.js';

const temp = tempDir();
let server: Server;
let backjob: BackJob;
let browser: Browser;
let url: string;

before(async () => {
  browser = await launchBrowser();
  ({ server, backjob } = createApp({ backend: sqlite({ file: temp.dbFile }) }));
  url = await listen(server);
});

after(async () => {
  await browser?.close();
  await backjob?.close();
  await closeServer(server);
  temp.remove();
});

defineAppTests(() => ({ browser, driver: serverRenderedDriver(() => url) }), 'cookie');
