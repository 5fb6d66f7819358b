/**
 * Who a job belongs to, end to end: a route dispatched as the signed-in
 * user says whose job it is, the same route run anonymously is refused with
 * a visible 403, and a second user sees nothing of the first user's jobs.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { E2E_TIMEOUT, useDemo, waitUntil } from './harness.js';

const e2e = useDemo();

/** A fresh browser context (its own cookies), signed in as `user` unless null. */
async function visitor(user: 'ada' | 'grace' | null): Promise<{ context: BrowserContext; page: Page }> {
  const context = await e2e.browser.newContext();
  context.setDefaultTimeout(E2E_TIMEOUT);
  const page = await context.newPage();
  if (user) {
    await page.goto(`${e2e.demo.url}/login`);
    await page.getByLabel('User', { exact: true }).fill(user);
    await page.getByLabel('Password', { exact: true }).fill(`${user}-demo`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Signed in as').waitFor();
  }
  return { context, page };
}

test('a wrong password is refused', async () => {
  const { context, page } = await visitor(null);
  await page.goto(`${e2e.demo.url}/login`);
  await page.getByLabel('User', { exact: true }).fill('ada');
  await page.getByLabel('Password', { exact: true }).fill('grace-demo');
  await page.getByRole('button', { name: 'Sign in' }).click();
  assert.match(await page.getByRole('alert').innerText(), /wrong password/);
  await context.close();
});

test('a route job runs as the signed-in user, and says so', async () => {
  const { context, page } = await visitor('ada');
  await page.goto(`${e2e.demo.url}/as-you`);
  await page.getByRole('button', { name: 'Build my team report' }).click();
  await page.locator('#team-report backjob-progress[status="completed"]').waitFor();
  const lines = await page.locator('#team-report [part="line"]').allInnerTexts();
  assert.equal(lines[0], 'Building the team report for Ada Lovelace (signed in as ada)');
  assert.equal(lines.at(-1), 'Report ready for Ada Lovelace');
  await context.close();
});

test('the same route run anonymously fails with a visible 403', async () => {
  const { context, page } = await visitor('ada');
  await page.goto(`${e2e.demo.url}/as-you`);
  await page.getByRole('button', { name: 'Run the team report anonymously' }).click();
  await page.waitForURL(/\/watch\//);
  await page.locator('main backjob-progress[status="failed"]').waitFor();
  assert.match(await page.locator('main [part="status"]').innerText(), /Failed/);
  assert.match(await page.locator('main backjob-progress [part="error"]').innerText(), /403 Forbidden/);
  await context.close();
});

test("a second user sees nothing of the first user's job", async () => {
  const ada = await visitor('ada');
  await ada.page.goto(`${e2e.demo.url}/failures`);
  await ada.page.getByRole('button', { name: 'Rebuild the archive' }).click();
  await ada.page.locator('#archive backjob-progress[status="running"]').waitFor();
  const jobId = await ada.page.locator('#archive').evaluate((el) => (el as HTMLElement & { jobId: string }).jobId);
  assert.ok(jobId);

  await ada.page.goto(`${e2e.demo.url}/jobs`);
  await ada.page.locator(`tr[data-job-id="${jobId}"]`).waitFor();

  const grace = await visitor('grace');
  await grace.page.goto(`${e2e.demo.url}/jobs`);
  assert.equal(await grace.page.locator(`tr[data-job-id="${jobId}"]`).count(), 0);
  assert.equal(await grace.page.getByText('archive/rebuild').count(), 0);
  // Knowing the id grants nothing: not the page, not the API, not the live channel.
  const watch = await grace.page.goto(`${e2e.demo.url}/watch/${jobId}`);
  assert.equal(watch?.status(), 404);
  const api = await grace.page.evaluate(async (id) => (await fetch(`/backjob/jobs/${id}`)).status, jobId);
  assert.ok(api === 403 || api === 404, `the API refused (${api})`);
  await grace.page.goto(`${e2e.demo.url}/jobs`);
  await grace.page.evaluate((id) => {
    const progress = document.createElement('backjob-progress');
    progress.setAttribute('job-id', id);
    document.querySelector('main')!.append(progress);
  }, jobId);
  await waitUntil(
    async () => /Unavailable/.test(await grace.page.locator('main > backjob-progress [part="status"]').innerText()),
    'the live channel refused to show the job',
  );
  assert.equal(await grace.page.locator('main > backjob-progress [role="progressbar"]').getAttribute('aria-valuenow'), null);

  // Ada, the owner, can cancel it from its page.
  await ada.page.goto(`${e2e.demo.url}/watch/${jobId}`);
  await ada.page.getByRole('button', { name: 'Cancel' }).click();
  await ada.page.locator('main backjob-progress[status="canceled"]').waitFor();
  await Promise.all([ada.context.close(), grace.context.close()]);
});
