/**
 * Interruptions, end to end: reloading the page mid-job resumes the same job
 * with every log line exactly once, and a server restarted mid-job is picked
 * up again by the page without the visitor doing anything.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { E2E_TIMEOUT, launchBrowser, startDemoProcess, tempDir, waitUntil, type DemoProcess } from './harness.js';

const temp = tempDir();
let browser: Browser;
const demos: DemoProcess[] = [];

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await Promise.all(demos.map((demo) => demo.stop()));
  temp.remove();
});

test('reloading mid-job shows the same job, every log line exactly once', async () => {
  const demo = await startDemoProcess({ dbFile: temp.dbFile, stepMs: 100 });
  demos.push(demo);
  const page = await browser.newPage();
  page.setDefaultTimeout(E2E_TIMEOUT);
  await page.goto(`${demo.url}/failures`);
  await page.getByRole('button', { name: 'Rebuild the archive' }).click();
  await page.locator('#archive backjob-progress[status="running"]').waitFor();
  const { jobId, token } = await page
    .locator('#archive')
    .evaluate((el) => ({ jobId: (el as HTMLElement & { jobId: string }).jobId, token: (el as HTMLElement & { token: string }).token }));

  await page.goto(`${demo.url}/watch/${jobId}?token=${encodeURIComponent(token)}`);
  const lines = page.locator('main backjob-log [part="line"]');
  await waitUntil(async () => (await lines.count()) >= 3, 'the watch page shows 3 lines');
  const before = await lines.count();
  await page.reload();
  await waitUntil(async () => (await lines.count()) >= before + 5, 'lines keep arriving after the reload');

  const text = await lines.allInnerTexts();
  assert.deepEqual(
    text,
    text.map((_, i) => `Batch ${i + 1} archived`),
    'lines 1…n, none missing, none twice',
  );
  assert.equal(await page.locator('main backjob-progress').getAttribute('status'), 'running');
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.locator('main backjob-progress[status="canceled"]').waitFor();
  await page.close();
  await demo.stop();
});

test('a server restarted mid-job: the page reconnects and the job finishes', async () => {
  const first = await startDemoProcess({ dbFile: temp.dbFile, stepMs: 300 });
  demos.push(first);
  const page = await browser.newPage();
  page.setDefaultTimeout(E2E_TIMEOUT);
  await page.goto(`${first.url}/`);
  await page.getByRole('button', { name: 'Build the quarterly report' }).click();
  const progress = page.locator('backjob-launcher backjob-progress');
  const lines = page.locator('backjob-launcher [part="line"]');
  await waitUntil(async () => (await lines.count()) >= 2, 'the job logged 2 lines');

  // A crash, not a polite shutdown: the job is left running in the database.
  await first.stop('SIGKILL');
  await page.locator('backjob-launcher backjob-progress[disconnected]').waitFor();
  assert.match(await progress.locator('[part="status"]').innerText(), /Reconnecting/);

  const second = await startDemoProcess({ dbFile: temp.dbFile, port: first.port, stepMs: 100 });
  demos.push(second);
  // The job is defined with `retries: 1`, so the restarted server runs it again.
  await page.locator('backjob-launcher backjob-progress[status="completed"]').waitFor({ timeout: 60_000 });
  assert.equal(await progress.getAttribute('disconnected'), null);
  assert.equal(await page.locator('backjob-launcher [role="progressbar"]').getAttribute('aria-valuenow'), '100');
  assert.equal((await lines.allInnerTexts()).at(-1), 'Step 20: Jaffa ledger totalled');
  await page.close();
});
