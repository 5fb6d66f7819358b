// The launcher against the real test server's HTTP API (proxied under this
// page's origin by web-test-runner.config.mjs); the live side is a
// Connection double here, so each state can be shown on demand. The
// end-to-end path with the real WebSocket is in integration.test.ts.
import { emulateMedia, sendKeys } from '@web/test-runner-commands';
import type { JobStatus } from '../shared/protocol.js';
import './backjob-launcher.js';
import type { BackjobLauncher } from './backjob-launcher.js';
import { FakeConnection } from './testing/fake-connection.js';
import { cleanup, equal, expectAccessible, mount, ok, waitFor } from './testing/helpers.js';
import { recordSpeech } from './testing/speech.js';

const button = (launcher: BackjobLauncher) => launcher.shadowRoot!.querySelector<HTMLButtonElement>('[part="button"]')!;
const part = (launcher: BackjobLauncher, name: string) => launcher.shadowRoot!.querySelector<HTMLElement>(`[part="${name}"]`);
const progressOf = (launcher: BackjobLauncher) => launcher.shadowRoot!.querySelector('backjob-progress');

/** A params object no other test uses, so the server never merges two tests' jobs. */
const unique = () => JSON.stringify({ lines: 1, delayMs: 1, run: `${Date.now()}-${Math.random()}` });

/** Counts requests to the start endpoint while the test runs. */
function countStarts() {
  const original = window.fetch;
  const counter = { calls: 0, restore: () => (window.fetch = original) };
  window.fetch = (input, init) => {
    if (String(input).endsWith('/jobs')) counter.calls++;
    return original(input, init);
  };
  return counter;
}

async function release(jobId: string) {
  await fetch(`/test/release/${jobId}`, { method: 'POST' });
}

describe('<backjob-launcher>', () => {
  afterEach(async () => {
    cleanup();
    document.documentElement.style.removeProperty('color-scheme');
    await emulateMedia({ colorScheme: 'light' });
  });

  for (const scheme of ['light', 'dark'] as const) {
    it(`renders its slotted label as an accessible button (${scheme})`, async () => {
      // A page that follows the OS (the elements follow the page): dark when the OS is.
        document.documentElement.style.setProperty('color-scheme', 'light dark');
        await emulateMedia({ colorScheme: scheme });
      const launcher = await mount('backjob-launcher', { name: 'count' });
      launcher.textContent = 'Export rows';
      await launcher.updateComplete;
      equal(button(launcher).getAttribute('aria-disabled'), 'false');
      equal(progressOf(launcher), null, 'no progress before a start');
      await expectAccessible(launcher);
    });
  }

  it('fires a cancelable backjob-start with the request before sending anything', async () => {
    const starts = countStarts();
    try {
      const launcher = await mount('backjob-launcher', { name: 'count', params: '{"lines":3}' });
      let request: unknown;
      launcher.addEventListener('backjob-start', (event) => {
        ok(event.bubbles && event.composed && event.cancelable, 'bubbling, composed, cancelable');
        request = event.detail.request;
        event.preventDefault();
      });
      button(launcher).click();
      await launcher.updateComplete;
      equal(request, { name: 'count', params: { lines: 3 } });
      equal(starts.calls, 0, 'nothing was sent');
      equal(launcher.jobId, undefined);
      ok(!launcher.running, 'not running');
    } finally {
      starts.restore();
    }
  });

  it('starts from the keyboard, is disabled while the job runs, shows every state, and starts again once it ended', async () => {
    const connection = new FakeConnection();
    const starts = countStarts();
    try {
      const launcher = await mount('backjob-launcher', { name: 'count', params: unique(), cancelable: true }, { connection });
      await sendKeys({ press: 'Tab' });
      equal(launcher.shadowRoot!.activeElement, button(launcher), 'Tab reaches the button');
      await sendKeys({ press: 'Enter' });
      const jobId = await waitFor(() => launcher.jobId, 'the job to start');
      equal(starts.calls, 1);
      ok(launcher.running, 'running');
      equal(button(launcher).getAttribute('aria-disabled'), 'true');
      equal(launcher.shadowRoot!.activeElement, button(launcher), 'focus stays on the button');
      await sendKeys({ press: 'Enter' });
      await sendKeys({ press: 'Space' });
      equal(starts.calls, 1, 'pressing a running launcher sends nothing');

      const progress = progressOf(launcher)!;
      equal(progress.jobId, jobId);
      equal(progress.token, launcher.token);
      ok(progress.cancelable, 'passes cancelable on');

      const states: Array<[string, () => void]> = [
        ['waiting', () => connection.snapshot(jobId, { status: 'waiting' })],
        ['running', () => connection.snapshot(jobId, { status: 'running', progress: 40, startedAt: Date.now() })],
        ['indeterminate', () => connection.snapshot(jobId, { progress: null, text: 'Thinking' })],
        ['disconnected', () => connection.setState('reconnecting')],
      ];
      for (const [state, show] of states) {
        show();
        await launcher.updateComplete;
        await progress.updateComplete;
        ok(launcher.running, `still running while ${state}`);
        await expectAccessible(launcher);
      }
      connection.setState('open');
      connection.snapshot(jobId, { status: 'completed', progress: 100 });
      await waitFor(() => !launcher.running, 'the launcher to be enabled again');
      equal(button(launcher).getAttribute('aria-disabled'), 'false');
      await expectAccessible(launcher);

      launcher.params = JSON.parse(unique());
      await sendKeys({ press: 'Enter' });
      await waitFor(() => launcher.jobId !== jobId && launcher.jobId, 'a second job');
      equal(starts.calls, 2);
    } finally {
      starts.restore();
    }
  });

  it('starts one job when start() is called twice in the same task', async () => {
    const starts = countStarts();
    try {
      const launcher = await mount('backjob-launcher', { name: 'count', params: unique() }, { connection: new FakeConnection() });
      await Promise.all([launcher.start(), launcher.start()]);
      equal(starts.calls, 1, 'requests sent');
      ok(launcher.jobId, 'the job started');
    } finally {
      starts.restore();
    }
  });

  for (const status of ['failed', 'canceled'] as JobStatus[]) {
    it(`can start again after the job ${status}`, async () => {
      const connection = new FakeConnection();
      const launcher = await mount('backjob-launcher', { name: 'count', params: unique() }, { connection });
      const speech = recordSpeech();
      button(launcher).click();
      const jobId = await waitFor(() => launcher.jobId, 'the job to start');
      connection.snapshot(jobId, { status, error: `It ${status}` });
      await waitFor(() => !launcher.running, 'the launcher to be enabled again');
      // The job was started here: even though its first snapshot shows the end, that end is news.
      await waitFor(() => speech.heard.some((h) => h.text === `Test job: ${status}: It ${status}`), `the ${status} end to be announced`);
      speech.stop();
      await expectAccessible(launcher);
    });
  }

  it('shows the server refusing a job that is not launchable, accessibly', async () => {
    const launcher = await mount('backjob-launcher', { name: 'internal' }, { connection: new FakeConnection() });
    button(launcher).click();
    const error = await waitFor(() => part(launcher, 'error'), 'the error');
    equal(error.getAttribute('role'), 'alert');
    ok(error.textContent!.length > 0, 'says why');
    ok(!launcher.running, 'can be pressed again');
    equal(launcher.jobId, undefined);
    await expectAccessible(launcher);
  });

  it('says what is wrong with its attributes instead of sending them', async () => {
    const starts = countStarts();
    try {
      const launcher = await mount('backjob-launcher', { name: 'count', params: '{not json' });
      button(launcher).click();
      await launcher.updateComplete;
      equal(part(launcher, 'error')!.textContent, 'The params attribute must be a JSON object.');
      launcher.removeAttribute('name');
      launcher.params = undefined;
      button(launcher).click();
      await launcher.updateComplete;
      equal(part(launcher, 'error')!.textContent, 'Set either the name or the route of the job to start.');
      equal(starts.calls, 0);
    } finally {
      starts.restore();
    }
  });

  it('joins the identical job the server merged the request into', async () => {
    const connection = new FakeConnection();
    const params = JSON.stringify({ run: `${Date.now()}` });
    const first = await mount('backjob-launcher', { name: 'gated', params }, { connection });
    const second = await mount('backjob-launcher', { name: 'gated', params }, { connection });
    button(first).click();
    const jobId = await waitFor(() => first.jobId, 'the first job');
    try {
      button(second).click();
      await waitFor(() => second.jobId, 'the second launcher to join');
      equal(second.jobId, jobId, 'the same job');
      ok(second.merged && !first.merged, 'the second one was merged');
      ok(part(second, 'note')!.textContent!.includes('Joined'), 'says so');
      await expectAccessible(second);
    } finally {
      await release(jobId);
    }
  });

  it('passes its label down, holds progress and log in one card, and keeps the log quiet by default', async () => {
    const connection = new FakeConnection();
    const launcher = await mount('backjob-launcher', { name: 'count', 'show-log': true, label: 'Nightly export' }, { connection });
    launcher.jobId = 'job1';
    await launcher.updateComplete;
    const progress = progressOf(launcher)!;
    const log = launcher.shadowRoot!.querySelector('backjob-log')!;
    equal(progress.label, 'Nightly export');
    equal(log.label, 'Log of Nightly export');
    equal(log.live, 'off', "the progress view tells the story; the log's lines are not read");
    equal(progress.parentElement, log.parentElement, 'one container');
    equal(progress.parentElement!.getAttribute('part'), 'card');
    launcher.setAttribute('log-live', 'summary');
    await launcher.updateComplete;
    equal(log.live, 'summary', 'log-live reaches the log');
    await expectAccessible(launcher);
  });

  it("forwards its views' parts, so a page styles ::part(indicator) from outside", async () => {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(`
      backjob-launcher::part(indicator) { background: rgb(1, 2, 3); }
      backjob-launcher::part(line) { color: rgb(4, 5, 6); }
      backjob-launcher::part(cancel-button) { color: rgb(7, 8, 9); }
    `);
    document.adoptedStyleSheets = [sheet];
    try {
      const connection = new FakeConnection();
      connection.snapshot('job1', { status: 'running', progress: 40 });
      const launcher = await mount('backjob-launcher', { name: 'count', 'show-log': true, cancelable: true }, { connection });
      launcher.jobId = 'job1';
      await launcher.updateComplete;
      connection.log('job1', 'hello');
      const progress = progressOf(launcher)!;
      await progress.updateComplete;
      const log = launcher.shadowRoot!.querySelector('backjob-log')!;
      await log.updateComplete;
      const inner = (element: Element, name: string) => element.shadowRoot!.querySelector(`[part="${name}"]`)!;
      equal(getComputedStyle(inner(progress, 'indicator')).backgroundColor, 'rgb(1, 2, 3)');
      equal(getComputedStyle(inner(log, 'line')).color, 'rgb(4, 5, 6)');
      equal(getComputedStyle(inner(progress, 'button')).color, 'rgb(7, 8, 9)');
    } finally {
      document.adoptedStyleSheets = [];
    }
  });

  it('takes params and body as properties and shows the log with show-log', async () => {
    const connection = new FakeConnection();
    const launcher = await mount('backjob-launcher', { name: 'count', 'show-log': true }, { connection, params: { lines: 1, run: `${Math.random()}` } });
    let request: unknown;
    launcher.addEventListener('backjob-start', (event) => (request = event.detail.request));
    button(launcher).click();
    const jobId = await waitFor(() => launcher.jobId, 'the job to start');
    ok((request as { params: { lines: number } }).params.lines === 1, 'params from the property');
    const log = launcher.shadowRoot!.querySelector('backjob-log')!;
    equal(log.jobId, jobId);
    connection.log(jobId, 'hello');
    await log.updateComplete;
    equal(log.text, ['hello']);
  });
});
