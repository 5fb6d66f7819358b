/**
 * Jobs made of parts, as a visitor of the demo meets them: a job with named
 * steps, a parent whose children each open to their own log, and a batch
 * launched from the page; each page axe-clean in its live state.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { E2E_TIMEOUT, axeViolations, launchBrowser, startDemoProcess, tempDir, waitUntil, type DemoProcess } from './harness.js';

const temp = tempDir();
let demo: DemoProcess;
let browser: Browser;

before(async () => {
  [demo, browser] = await Promise.all([startDemoProcess({ dbFile: temp.dbFile, stepMs: 60 }), launchBrowser()]);
});

after(async () => {
  await browser?.close();
  await demo?.stop();
  temp.remove();
});

async function open(path: string, colorScheme: 'light' | 'dark' = 'light'): Promise<Page> {
  const page = await browser.newPage({ colorScheme });
  page.setDefaultTimeout(E2E_TIMEOUT);
  await page.goto(demo.url + path);
  await page.waitForFunction(() => customElements.get('backjob-launcher') !== undefined);
  return page;
}

const squash = (text: string) => text.replace(/\s+/g, ' ').trim();

test('a job with steps says "Step 2 of 3: Transform" and lists its steps, each ending in turn', async () => {
  const page = await open('/steps');
  await page.getByRole('button', { name: 'Run the nightly import' }).click();
  const summary = page.locator('#import-run [part="step-summary"]');
  await waitUntil(async () => /^Step 2 of 3: Transform/.test(squash((await summary.textContent()) ?? '')), 'the second step shown');

  const steps = page.getByRole('list', { name: /Steps of/ });
  assert.deepEqual((await steps.locator('[part~="step-title"]').allInnerTexts()).map(squash), ['Download', 'Transform', 'Upload']);
  assert.equal(await steps.locator('[part~="step"]').nth(0).getAttribute('data-state'), 'completed');
  assert.equal(await steps.locator('[part~="step"]').nth(1).getAttribute('aria-current'), 'step');
  const value = Number(await page.locator('#import-run [role="progressbar"]').getAttribute('aria-valuenow'));
  assert.ok(value > 33 && value < 67, `the bar is within the second step (${value} %)`);
  assert.deepEqual(await axeViolations(page), [], 'axe, mid-run');

  await page.locator('#import-run backjob-progress[status="completed"]').waitFor();
  assert.equal(await page.locator('#import-run [role="progressbar"]').getAttribute('aria-valuenow'), '100');
  assert.deepEqual(await steps.locator('[part~="step"]').evaluateAll((items) => items.map((item) => item.getAttribute('data-state'))), ['completed', 'completed', 'completed']);
  const lines = await page.locator('#import-run [part="line"]').allInnerTexts();
  assert.equal(lines.length, 15);
  assert.equal(lines[5], 'Transformed chunk 1 of 5');
  await page.close();
});

test('a parent lists its children and reaches 100 %; a child opens on its own page with its own log', async () => {
  const page = await open('/children');
  await page.getByRole('button', { name: 'Export all files' }).click();
  const children = page.getByRole('list', { name: /Jobs started by/ });
  await waitUntil(async () => (await children.locator('[part~="child"]').count()) === 5, 'five children listed');
  assert.deepEqual(await axeViolations(page), [], 'axe, mid-run');

  await page.locator('#export-all backjob-progress[status="completed"]').waitFor();
  assert.equal(await page.locator('#export-all [role="progressbar"]').getAttribute('aria-valuenow'), '100');
  assert.equal(squash(await page.locator('#export-all [part="children-summary"]').innerText()), '5 of 5 done');
  assert.deepEqual(
    (await children.locator('[part~="child-link"]').allInnerTexts()).map(squash),
    ['customers.csv', 'orders.csv', 'invoices.csv', 'products.csv', 'refunds.csv'].map((file) => `Export ${file}`),
  );
  assert.deepEqual(await children.locator('[part~="child"]').evaluateAll((items) => items.map((item) => item.getAttribute('data-state'))), Array(5).fill('completed'));

  const orders = children.getByRole('link', { name: 'Export orders.csv' });
  const childId = await orders.evaluate((link) => link.closest('li')!.getAttribute('data-job-id'));
  await Promise.all([page.waitForURL(new RegExp(`/watch/${childId}\\?token=`)), orders.click()]);
  await page.locator('main backjob-progress[status="completed"]').waitFor();
  await waitUntil(async () => (await page.locator('main backjob-log [part="line"]').count()) === 8, "the child's 8 lines");
  const lines = await page.locator('main backjob-log [part="line"]').allInnerTexts();
  assert.ok(lines.every((line) => line.startsWith('orders.csv: ')), `only the child's own log: ${lines.join(' | ')}`);
  assert.deepEqual(await axeViolations(page), [], "axe, the child's page");
  await page.close();
});

test('a batch launched from the page runs its 20 members and lists them, each openable', async () => {
  const page = await open('/batch');
  await page.getByRole('button', { name: 'Resize the photos' }).click();
  const members = page.getByRole('list', { name: 'Jobs in Resize 20 photos' });
  await waitUntil(async () => (await members.locator('[part~="child"]').count()) === 20, 'twenty members listed');
  assert.deepEqual(await axeViolations(page), [], 'axe, mid-run');

  await page.locator('#resize-batch backjob-progress[status="completed"]').waitFor();
  assert.equal(await page.locator('#resize-batch [role="progressbar"]').getAttribute('aria-valuenow'), '100');
  assert.equal(squash(await page.locator('#resize-batch [part="children-summary"]').innerText()), '20 of 20 done');
  assert.deepEqual(await members.locator('[part~="child"]').evaluateAll((items) => items.map((item) => item.getAttribute('data-state'))), Array(20).fill('completed'));
  assert.deepEqual(await axeViolations(page), [], 'axe, ended');

  const last = members.locator('[part~="child-link"]').nth(19);
  const memberId = await last.evaluate((link) => link.closest('li')!.getAttribute('data-job-id'));
  await Promise.all([page.waitForURL(new RegExp(`/watch/${memberId}\\?token=`)), last.click()]);
  await waitUntil(async () => (await page.locator('main backjob-log [part="line"]').count()) === 4, "the member's 4 lines");
  assert.match(await page.locator('main backjob-log [part="line"]').first().innerText(), /^photo-20\.jpg: size 1 of 4/);
  await page.close();
});

test('the family pages pass axe before anything runs, in light and dark', async () => {
  for (const colorScheme of ['light', 'dark'] as const) {
    for (const path of ['/steps', '/children', '/batch']) {
      const page = await open(path, colorScheme);
      assert.deepEqual(await axeViolations(page), [], `${path} (${colorScheme})`);
      await page.close();
    }
  }
});
