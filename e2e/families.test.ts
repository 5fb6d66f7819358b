/**
 * Jobs made of parts, as a visitor of the demo meets them: a job with named
 * steps, a parent whose children each open to their own log, and a batch
 * launched from the page; each page axe-clean in its live state.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { E2E_TIMEOUT, axeViolations, useDemo, waitUntil } from './harness.js';

const e2e = useDemo();

async function open(path: string, colorScheme: 'light' | 'dark' = 'light'): Promise<Page> {
  const page = await e2e.browser.newPage({ colorScheme });
  page.setDefaultTimeout(E2E_TIMEOUT);
  await page.goto(e2e.demo.url + path);
  await page.waitForFunction(() => customElements.get('backjob-launcher') !== undefined);
  return page;
}

const squash = (text: string) => text.replace(/\s+/g, ' ').trim();

test('a job with steps says "Step 2 of 3: Transform" and lists its steps, each ending in turn', async () => {
  const page = await open('/steps');
  await page.getByRole('button', { name: 'Run the nightly import' }).click();
  // Read at once, in the page, the moment the second step shows: the element's parts as one state.
  const seen = await page.waitForFunction(() => {
    const progress = document.querySelector('#import-run')?.shadowRoot?.querySelector('backjob-progress')?.shadowRoot;
    const summary = progress?.querySelector('[part="step-summary"]')?.textContent?.replace(/\s+/g, ' ').trim() ?? '';
    if (!summary.startsWith('Step 2 of 3: Transform')) return null;
    const list = progress!.querySelector('[part~="steps"]')!;
    const steps = [...list.querySelectorAll('[part~="step"]')];
    return {
      list: list.tagName,
      label: list.getAttribute('aria-label'),
      titles: steps.map((step) => step.querySelector('[part~="step-title"]')!.textContent!.trim()),
      states: steps.map((step) => step.getAttribute('data-state')),
      current: steps.findIndex((step) => step.getAttribute('aria-current') === 'step'),
      value: Number(progress!.querySelector('[role="progressbar"]')!.getAttribute('aria-valuenow')),
    };
  }, undefined, { polling: 'raf' });
  const state = (await seen.jsonValue())!;
  assert.equal(state.list, 'OL');
  assert.match(state.label ?? '', /^Steps of /);
  assert.deepEqual(state.titles, ['Download', 'Transform', 'Upload']);
  assert.deepEqual(state.states, ['completed', 'running', 'waiting']);
  assert.equal(state.current, 1, 'the running step is the current one');
  assert.ok(state.value >= 33 && state.value < 67, `the bar is within the second step (${state.value} %)`);
  const steps = page.getByRole('list', { name: /Steps of/ });
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

test("signed in, the batch is one row of \"Your jobs\", not twenty-one, and its members open without a token", async () => {
  const page = await e2e.browser.newPage();
  page.setDefaultTimeout(E2E_TIMEOUT);
  await page.goto(`${e2e.demo.url}/login`);
  await page.getByLabel('User', { exact: true }).fill('grace');
  await page.getByLabel('Password', { exact: true }).fill('grace-demo');
  await Promise.all([page.waitForURL(`${e2e.demo.url}/`), page.getByRole('button', { name: 'Sign in' }).click()]);
  await page.goto(`${e2e.demo.url}/batch`);
  await page.getByRole('button', { name: 'Resize the photos' }).click();
  await page.locator('#resize-batch backjob-progress[status="completed"]').waitFor();
  const batchId = await page.locator('#resize-batch').evaluate((launcher) => (launcher as HTMLElement & { jobId?: string }).jobId);
  const memberId = await page.locator('#resize-batch [part~="child"]').first().getAttribute('data-job-id');

  await page.goto(`${e2e.demo.url}/jobs`);
  const rows = page.locator('backjob-jobs [part="row"]');
  await waitUntil(async () => (await rows.count()) > 0, 'the list filled');
  assert.deepEqual(await rows.evaluateAll((items) => items.map((item) => item.getAttribute('data-job-id'))), [batchId]);
  assert.deepEqual(await axeViolations(page), [], 'axe, the list');

  // The batch's own page lists its members; a member is the owner's to open, no token in its address.
  await page.goto(`${e2e.demo.url}/watch/${batchId}`);
  // The first ten (the element's default `children-limit`), and the control that shows all of them.
  await waitUntil(async () => (await page.locator('main [part~="child"]').count()) === 10, "the batch's page lists its members");
  await page.locator('main [part="children-toggle"]').click();
  await waitUntil(async () => (await page.locator('main [part~="child"]').count()) === 20, 'all twenty, once asked');
  const response = await page.goto(`${e2e.demo.url}/watch/${memberId}`);
  assert.equal(response?.status(), 200);
  await waitUntil(async () => (await page.locator('main backjob-log [part="line"]').count()) === 4, "the member's own 4 lines");
  await page.close();
});
