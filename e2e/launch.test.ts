/**
 * The demo as a visitor meets it: launch a job and watch it finish, see a
 * failure's reason, cancel a long job, start a job with a POST body, and
 * open a page whose job the server started while rendering.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ARTIFACTS, E2E_TIMEOUT, useDemo, waitUntil } from './harness.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const e2e = useDemo();

async function open(path: string): Promise<Page> {
  const page = await e2e.browser.newPage();
  page.setDefaultTimeout(E2E_TIMEOUT);
  await page.goto(e2e.demo.url + path);
  return page;
}

test('a launcher runs its job to 100 % and fills the log', async () => {
  const page = await open('/');
  await page.getByRole('button', { name: 'Build the quarterly report' }).click();
  await page.locator('backjob-launcher backjob-progress[status="completed"]').waitFor();
  assert.equal(await page.locator('backjob-launcher [role="progressbar"]').getAttribute('aria-valuenow'), '100');
  assert.match(await page.locator('backjob-launcher [part="status"]').innerText(), /Completed/);
  const lines = await page.locator('backjob-launcher [part="line"]').allInnerTexts();
  assert.equal(lines.length, 20);
  assert.equal(lines[0], 'Step 1: Aberdeen ledger totalled');
  assert.equal(lines[19], 'Step 20: Jaffa ledger totalled');

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.setViewportSize({ width: 1100, height: 900 });
  await page.screenshot({ path: join(ARTIFACTS, 'demo-main.png'), fullPage: true });
  await page.close();
});

test('a failing job shows its reason', async () => {
  const page = await open('/failures');
  await page.getByRole('button', { name: 'Run the broken report' }).click();
  await page.locator('#broken backjob-progress[status="failed"]').waitFor();
  assert.match(await page.locator('#broken [part="status"]').innerText(), /Failed/);
  assert.match(await page.locator('#broken backjob-progress [part="error"]').innerText(), /malformed CSV at row 7/);
  // Progress stopped where the job did: a failure is not shown as a finished bar.
  assert.equal(await page.locator('#broken [role="progressbar"]').getAttribute('aria-valuenow'), '50');
  await page.close();
});

test('a long job can be cancelled and reads cancelled', async () => {
  const page = await open('/failures');
  await page.getByRole('button', { name: 'Rebuild the archive' }).click();
  const lines = page.locator('#archive [part="line"]');
  await waitUntil(async () => (await lines.count()) >= 3, 'the archive job logged 3 lines');
  await page.locator('#archive').getByRole('button', { name: 'Cancel' }).click();
  await page.locator('#archive backjob-progress[status="canceled"]').waitFor();
  assert.match(await page.locator('#archive [part="status"]').innerText(), /Cancel+ed/);
  // The handler stopped: no more lines arrive after the end.
  const count = await lines.count();
  await page.waitForTimeout(500);
  assert.equal(await lines.count(), count);
  assert.ok(count < 300, `the job was stopped early (${count} lines)`);
  await page.close();
});

test('a route job gets its POST body', async () => {
  const page = await open('/import');
  await page.getByLabel('List name').fill('Pioneers');
  await page.getByLabel('Rows, one per line').fill('Hedy Lamarr\nMargaret Hamilton\n<b>Radia Perlman</b>');
  await page.getByRole('button', { name: 'Import rows' }).click();
  await page.locator('#import backjob-progress[status="completed"]').waitFor();
  const lines = await page.locator('#import [part="line"]').allInnerTexts();
  assert.deepEqual(lines, [
    'Importing 3 row(s) into “Pioneers”',
    'Imported: Hedy Lamarr',
    'Imported: Margaret Hamilton',
    'Imported: <b>Radia Perlman</b>', // shown as text, never as markup
    'Done: 3 row(s) in “Pioneers”',
  ]);
  await page.close();
});

test('a job the server started while rendering is watched from plain HTML', async () => {
  const response = await fetch(`${e2e.demo.url}/rendered`);
  const markup = await response.text();
  const match = /<backjob-progress job-id="([\w-]+)" token="([^"]+)"/.exec(markup);
  assert.ok(match, 'the page contains <backjob-progress job-id token>');
  assert.match(markup, new RegExp(`<backjob-log job-id="${match[1]}" token="`));

  const page = await open('/rendered');
  await page.locator('main backjob-progress[status="completed"]').waitFor();
  await waitUntil(async () => (await page.locator('main backjob-log [part="line"]').count()) === 12, 'the digest logged 12 lines');
  await page.close();
});

test('every demo page passes axe, in light and dark', async () => {
  const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  for (const colorScheme of ['light', 'dark'] as const) {
    const page = await e2e.browser.newPage({ colorScheme });
    for (const path of ['/', '/as-you', '/failures', '/import', '/rendered', '/jobs', '/login']) {
      await page.goto(e2e.demo.url + path);
      await page.waitForFunction(() => customElements.get('backjob-progress') !== undefined);
      if (path === '/') {
        // Check the elements in their live state too, not only the empty page.
        await page.getByRole('button', { name: 'Build the quarterly report' }).click();
        await page.locator('backjob-launcher [part="line"]').first().waitFor();
      }
      await page.addScriptTag({ content: axeSource });
      const violations = await page.evaluate(async () => {
        const { violations } = await (window as unknown as { axe: { run(): Promise<{ violations: Array<{ id: string; nodes: Array<{ target: unknown }> }> }> } }).axe.run();
        return violations.map((v) => `${v.id}: ${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')}`);
      });
      assert.deepEqual(violations, [], `${path} (${colorScheme})`);
    }
    await page.close();
  }
});

test('the demo serves the client, and no other file of the project', async () => {
  /** A GET with the path sent exactly as written (fetch would resolve the dot segments first). */
  const status = (path: string) =>
    new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: e2e.demo.port, path }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject);
    });
  assert.equal(await status('/client/index.ts'), 200);
  assert.equal(await status('/node_modules/lit/index.js'), 200);
  // A database inside the project, where `npm run demo` keeps its own.
  const probe = `e2e-probe-${process.pid}.db`;
  writeFileSync(join(root, probe), 'SQLite format 3');
  try {
    for (const path of [
      '/package.json',
      '/server/core/core.ts',
      `/@fs${root}${probe}`,
      `/client/../${probe}`,
      `/node_modules/%2e%2e/${probe}`,
      `/@fs${root}node_modules/../${probe}`,
      `/@fs${root}node_modules/%252e%252e/${probe}`,
      `/@fs${e2e.temp.dbFile}`,
    ]) {
      assert.equal(await status(path), 404, path);
    }
  } finally {
    rmSync(join(root, probe), { force: true });
  }
});
