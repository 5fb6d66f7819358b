/**
 * What every example app in e2e/apps must do in Chromium, whatever its
 * stack: its user starts a job and watches it to the end on a page that has
 * only the job's id (the session or bearer token says who they are, through
 * a connection ticket), cancels one the same way, another user sees nothing
 * of either, and axe finds nothing. Each app's test file says how its pages
 * sign in and show a job ({@link AppDriver}), then calls {@link defineAppTests}.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { E2E_TIMEOUT, axeViolations, waitUntil } from './harness.js';

/** The example apps' users (e2e/apps/users.ts). */
export type User = 'ada' | 'grace';

/** A job as `GET /backjob/jobs` lists it. */
export interface ListedJob {
  id: string;
  status: string;
}

/** How one app's pages are driven. */
export interface AppDriver {
  /** A new page in `context`, signed in as `user` the way the app signs in, showing its two launchers. */
  signIn(context: BrowserContext, user: User): Promise<Page>;
  /**
   * A new page in `context` (signed in as `user` again where the app keeps
   * no sign-in across pages) showing `<backjob-progress job-id cancelable>`
   * for `id`, with no token.
   */
  watch(context: BrowserContext, user: User, id: string): Promise<Page>;
  /** `GET /backjob/jobs` as the user of `page`, authenticated as the page does it; throws unless it answers 200. */
  listJobs(page: Page): Promise<ListedJob[]>;
}

/** Clicks the launcher labelled `label` and resolves with the id of the job it started. */
export async function launch(page: Page, label: string): Promise<string> {
  await page.getByRole('button', { name: label }).click();
  const handle = await page.waitForFunction(
    (label) => [...document.querySelectorAll('backjob-launcher')].find((l) => l.textContent?.trim() === label)?.jobId,
    label,
    { timeout: E2E_TIMEOUT },
  );
  return (await handle.jsonValue()) as string;
}

/** The status each ticket request of `context` was answered with, and whether it carried a bearer token. */
function recordTickets(context: BrowserContext): Array<{ status: number; bearer: boolean }> {
  const tickets: Array<{ status: number; bearer: boolean }> = [];
  context.on('response', (response) => {
    const request = response.request();
    if (request.method() === 'POST' && new URL(request.url()).pathname === '/backjob/tickets') {
      tickets.push({ status: response.status(), bearer: /^Bearer /.test(request.headers().authorization ?? '') });
    }
  });
  return tickets;
}

/**
 * The shared tests, registered in the calling test file. `app()` gives the
 * browser and driver once its `before` hook has run.
 *
 * @param auth how the app's pages authenticate: `cookie` (a session) or `bearer` (a token in `Authorization`)
 */
export function defineAppTests(app: () => { browser: Browser; driver: AppDriver }, auth: 'cookie' | 'bearer'): void {
  const newContext = async () => {
    const context = await app().browser.newContext();
    context.setDefaultTimeout(E2E_TIMEOUT);
    return context;
  };

  test('the owner starts a job and watches it to the end on a page with only its id', async () => {
    const { driver } = app();
    const context = await newContext();
    const tickets = recordTickets(context);
    const page = await driver.signIn(context, 'ada');
    const id = await launch(page, 'Build the report');
    const watching = await driver.watch(context, 'ada', id);
    const progress = watching.locator(`backjob-progress[job-id="${id}"]`);
    assert.equal(await progress.getAttribute('token'), null, 'the page has no watch token');
    await watching.locator(`backjob-progress[job-id="${id}"][status="completed"]`).waitFor();
    assert.equal(await progress.getByRole('progressbar').getAttribute('aria-valuenow'), '100');
    // The live channel was opened with a ticket the app's own middleware vouched for.
    assert.ok(tickets.length >= 2, `a ticket per page's socket, got ${JSON.stringify(tickets)}`);
    assert.ok(tickets.every((t) => t.status === 200 && t.bearer === (auth === 'bearer')), JSON.stringify(tickets));
    await context.close();
  });

  test('the owner cancels a running job from a page with only its id', async () => {
    const { driver } = app();
    const context = await newContext();
    const page = await driver.signIn(context, 'ada');
    const id = await launch(page, 'Import the contacts');
    const watching = await driver.watch(context, 'ada', id);
    await watching.locator(`backjob-progress[job-id="${id}"][status="running"]`).waitFor();
    await watching.locator(`backjob-progress[job-id="${id}"]`).getByRole('button', { name: 'Cancel' }).click();
    await watching.locator(`backjob-progress[job-id="${id}"][status="canceled"]`).waitFor();
    // The launcher that started it sees the end too, and the API agrees.
    await page.locator('backjob-launcher backjob-progress[status="canceled"]').waitFor();
    assert.deepEqual((await driver.listJobs(watching)).find((job) => job.id === id)?.status, 'canceled');
    await context.close();
  });

  test("another user sees nothing of the first user's job", async () => {
    const { driver } = app();
    const [adas, graces] = await Promise.all([newContext(), newContext()]);
    const ada = await driver.signIn(adas, 'ada');
    await driver.signIn(graces, 'grace');
    const id = await launch(ada, 'Build the report');
    const grace = await driver.watch(graces, 'grace', id);
    const progress = grace.locator(`backjob-progress[job-id="${id}"]`);
    await progress.locator('[part="error"]').waitFor();
    assert.equal(await progress.locator('[part="error"]').innerText(), 'No such job, or not yours to watch');
    assert.equal(await progress.getAttribute('status'), null, 'nothing of the job is shown');
    assert.equal(await progress.getByRole('progressbar').getAttribute('aria-valuenow'), null);
    await waitUntil(async () => (await driver.listJobs(ada)).some((job) => job.id === id), "the job is in its owner's list");
    assert.deepEqual((await driver.listJobs(grace)).filter((job) => job.id === id), []);
    await Promise.all([adas.close(), graces.close()]);
  });

  test('axe finds no WCAG 2.2 A or AA violation on the launcher page, a job page, and a refused one', async () => {
    const { driver } = app();
    const [adas, graces] = await Promise.all([newContext(), newContext()]);
    const ada = await driver.signIn(adas, 'ada');
    const id = await launch(ada, 'Build the report');
    await ada.locator('backjob-launcher backjob-progress[status="completed"]').waitFor();
    assert.deepEqual(await axeViolations(ada), [], 'the launcher page, with a job completed and its log');
    const watching = await driver.watch(adas, 'ada', id);
    await watching.locator('backjob-progress[status="completed"]').waitFor();
    assert.deepEqual(await axeViolations(watching), [], 'the job page');
    await driver.signIn(graces, 'grace');
    const refused = await driver.watch(graces, 'grace', id);
    await refused.locator('backjob-progress [part="error"]').waitFor();
    assert.deepEqual(await axeViolations(refused), [], 'the job page, refused to another user');
    await Promise.all([adas.close(), graces.close()]);
  });
}

/**
 * The driver of the server-rendered Express apps (e2e/apps/pages.ts): a
 * sign-in form whose session cookie serves every page of the context, and a
 * job page at `/jobs/:id`.
 */
export function serverRenderedDriver(origin: () => string): AppDriver {
  return {
    async signIn(context, user) {
      const page = await context.newPage();
      await page.goto(`${origin()}/`);
      await page.getByLabel('User').fill(user);
      await page.getByLabel('Password').fill(`${user}-secret`);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByText(`Signed in as ${user}.`).waitFor();
      return page;
    },
    async watch(context, _user, id) {
      const page = await context.newPage();
      await page.goto(`${origin()}/jobs/${id}`);
      return page;
    },
    listJobs: (page) => listJobsIn(page),
  };
}

/** `GET /backjob/jobs` from inside `page`, with the page's cookies and the `headers` given. */
export function listJobsIn(page: Page, headers: Record<string, string> = {}): Promise<ListedJob[]> {
  return page.evaluate(async (headers) => {
    const response = await fetch('/backjob/jobs', { headers });
    if (!response.ok) throw new Error(`GET /backjob/jobs answered ${response.status}`);
    return ((await response.json()) as { jobs: ListedJob[] }).jobs;
  }, headers);
}
