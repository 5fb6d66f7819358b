/**
 * e2e/apps/express5-helmet in Chromium: an Express 5 app with
 * express-session and helmet's default Content-Security-Policy, its pages
 * server-rendered, the client bundle served from its own origin.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { sqlite } from 'backjob';
import type { BackJob } from 'backjob';
import { createApp } from './apps/express5-helmet/app.js';
import { defineAppTests, launch, serverRenderedDriver } from './app-flows.js';
import { E2E_TIMEOUT, closeServer, launchBrowser, listen, tempDir } from './harness.js';

const temp = tempDir();
let server: Server;
let backjob: BackJob;
let browser: Browser;
let url: string;

const driver = serverRenderedDriver(() => url);


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

defineAppTests(() => ({ browser, driver }), 'cookie');

/** Records every `securitypolicyviolation` the page's documents report, before any of their scripts runs. */
async function recordViolations(context: BrowserContext): Promise<void> {
  await context.addInitScript(() => {
    const seen: string[] = ((window as unknown as { cspViolations: string[] }).cspViolations = []);
    document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.violatedDirective}: ${e.blockedURI || e.sample}`));
  });
}

const violations = (page: Page) => page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations);

/** The bar's value, and its indicator's width as a percentage of the track, read at one instant. */
function barOf(page: Page, selector: string): Promise<{ value: number; width: number }> {
  return page.locator(selector).evaluate((element) => {
    const track = element.shadowRoot!.querySelector('[role="progressbar"]')!;
    const indicator = element.shadowRoot!.querySelector('[part="indicator"]')!;
    return {
      value: Number(track.getAttribute('aria-valuenow')),
      width: (indicator.getBoundingClientRect().width / track.getBoundingClientRect().width) * 100,
    };
  });
}

/**
 * Signs in at `origin`, cancels an import part-way, and checks that the bars
 * of the job page and of the launcher are as wide as their values, and that
 * neither page reported a CSP violation. Returns the policy the pages got.
 */
async function checkBarsUnderPolicy(origin: string): Promise<string> {
  const context = await browser.newContext({ reducedMotion: 'reduce' }); // no width transition to wait for
  context.setDefaultTimeout(E2E_TIMEOUT);
  await recordViolations(context);
  const page = await serverRenderedDriver(() => origin).signIn(context, 'ada');
  const policy = (await page.request.get(`${origin}/`)).headers()['content-security-policy'] ?? '';

  const id = await launch(page, 'Import the contacts');
  const watching = await context.newPage();
  await watching.goto(`${origin}/jobs/${id}`);
  const bar = `backjob-progress[job-id="${id}"]`;
  await watching.waitForFunction((bar) => Number(document.querySelector(bar)?.shadowRoot?.querySelector('[role="progressbar"]')?.getAttribute('aria-valuenow')) >= 2, bar, {
    timeout: E2E_TIMEOUT,
  });
  await watching.locator(bar).getByRole('button', { name: 'Cancel' }).click();
  await watching.locator(`${bar}[status="canceled"]`).waitFor();
  await page.locator('backjob-launcher backjob-progress[status="canceled"]').waitFor();

  // Stopped part-way: a bar drawn full (or empty) would not match its value.
  for (const [where, selector] of [
    [watching, bar],
    [page, 'backjob-launcher >> backjob-progress'],
  ] as const) {
    const { value, width } = await barOf(where, selector);
    assert.ok(value > 0 && value < 100, `stopped part-way, at ${value}`);
    assert.ok(Math.abs(width - value) < 1, `the bar is ${width.toFixed(1)} % wide at ${value} %`);
  }
  assert.deepEqual(await violations(page), [], 'the launcher page');
  assert.deepEqual(await violations(watching), [], 'the job page');
  await context.close();
  return policy;
}

test("under helmet's default policy the bars are as wide as their values, and nothing is reported", async () => {
  const policy = await checkBarsUnderPolicy(url);
  assert.match(policy, /script-src 'self'/);
  assert.match(policy, /script-src-attr 'none'/);
});

// A policy that blocks inline style attributes: a bar whose width were one would read full.
test("under helmet's policy with style-src 'self' (no 'unsafe-inline'), the same", async () => {
  const strict = createApp({
    backend: sqlite({ file: join(temp.dir, 'strict.db') }),
    contentSecurityPolicy: { directives: { 'style-src': ["'self'"] } },
  });
  try {
    const policy = await checkBarsUnderPolicy(await listen(strict.server));
    assert.match(policy, /style-src 'self';/);
  } finally {
    await strict.backjob.close();
    await closeServer(strict.server);
  }
});
