/**
 * e2e/apps/react-bearer in Chromium: a React 19 page built by Vite, signed in
 * to its API by a bearer token only (no cookie ever), with BackJob's
 * elements rendered by React and `configureBackjob({ headers })` giving
 * them the token.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { sqlite, type BackJob } from 'backjob';
import { createApi } from './apps/react-bearer/server.js';
import { defineAppTests, launch, listJobsIn, type AppDriver } from './app-flows.js';
import { E2E_TIMEOUT, closeServer, launchBrowser, listen, tempDir } from './harness.js';

const appDir = fileURLToPath(new URL('./apps/react-bearer/', import.meta.url));
const temp = tempDir();
let server: Server;
let backjob: BackJob;
let browser: Browser;
let url: string;
/** Each signed-in page's bearer token, as the API gave it. */
const tokens = new WeakMap<Page, string>();

const driver: AppDriver = {
  async signIn(context, user) {
    const page = await context.newPage();
    await page.goto(`${url}/`);
    await page.getByLabel('User').fill(user);
    await page.getByLabel('Password').fill(`${user}-secret`);
    const [login] = await Promise.all([page.waitForResponse('**/api/login'), page.getByRole('button', { name: 'Sign in' }).click()]);
    tokens.set(page, ((await login.json()) as { token: string }).token);
    await page.getByText(`Signed in as ${user}.`).waitFor();
    return page;
  },
  // The token lives in the page's memory: a new page signs in again.
  async watch(context, user, id) {
    const page = await driver.signIn(context, user);
    await page.getByLabel('Job id').fill(id);
    await page.getByRole('button', { name: 'Watch' }).click();
    return page;
  },
  listJobs: (page) => listJobsIn(page, { authorization: `Bearer ${tokens.get(page)}` }),
};

before(async () => {
  const pageDir = join(temp.dir, 'page');
  [, browser] = await Promise.all([
    build({ root: appDir, configFile: join(appDir, 'vite.config.ts'), logLevel: 'warn', build: { outDir: pageDir, emptyOutDir: true } }),
    launchBrowser(),
  ]);
  ({ server, backjob } = createApi({ pageDir, backend: sqlite({ file: temp.dbFile }) }));
  url = await listen(server);
});

after(async () => {
  await browser?.close();
  await backjob?.close();
  await closeServer(server);
  temp.remove();
});

defineAppTests(() => ({ browser, driver }), 'bearer');

test('React hears the elements’ events, and no cookie is ever set', async () => {
  const context = await browser.newContext();
  context.setDefaultTimeout(E2E_TIMEOUT);
  const page = await driver.signIn(context, 'ada');
  const id = await launch(page, 'Build the report');
  await page.getByRole('status').filter({ hasText: `Report ${id} is ready.` }).waitFor();
  const anonymous = await page.evaluate(async () => (await fetch('/backjob/jobs')).status);
  assert.equal(anonymous, 401, 'without the token, the API knows nobody');
  assert.deepEqual(await context.cookies(), []);
  await context.close();
});
