// The elements end to end: the real test server (client/test-server.ts)
// behind the page's origin for the HTTP API, its real WebSocket hub, and the
// real shared connection. Nothing here is a double.
import './index.js';
import { configureBackjob } from './config.js';
import type { BackjobLauncher } from './backjob-launcher.js';
import type { BackjobLog } from './backjob-log.js';
import type { BackjobProgress } from './backjob-progress.js';
import { cleanup, equal, expectAccessible, mount, ok, waitFor } from './testing/helpers.js';

let endpoint = '';

const inside = <T extends Element>(launcher: BackjobLauncher, selector: string) =>
  launcher.shadowRoot!.querySelector(selector) as T | null;
const progressOf = (launcher: BackjobLauncher) => inside<BackjobProgress>(launcher, 'backjob-progress');
const logOf = (launcher: BackjobLauncher) => inside<BackjobLog>(launcher, 'backjob-log');
const partOf = (element: Element, name: string) => element.shadowRoot!.querySelector<HTMLElement>(`[part="${name}"]`);
const unique = () => `${Date.now()}-${Math.random()}`;

async function launch(attributes: Record<string, string | boolean>) {
  const launcher = await mount('backjob-launcher', { endpoint, ...attributes });
  partOf(launcher, 'button')!.click();
  const progress = await waitFor(() => progressOf(launcher), 'the progress view');
  return { launcher, progress };
}

function nextEvent<K extends 'backjob-completed' | 'backjob-failed' | 'backjob-canceled'>(type: K) {
  return new Promise<DocumentEventMap[K]>((resolve) => document.addEventListener(type, resolve, { once: true }));
}

describe('elements against the real server', function () {
  this.timeout(60_000);

  before(async () => {
    ({ endpoint } = await (await fetch('/test/info')).json());
  });

  afterEach(cleanup);

  it('launches a job; the bar reaches 100% and the log fills, in order', async () => {
    const completed = nextEvent('backjob-completed');
    const { launcher, progress } = await launch({ name: 'count', params: JSON.stringify({ lines: 30, delayMs: 15, run: unique() }), 'show-log': true });
    const event = await completed;
    equal(event.detail.result, { lines: 30 });
    await waitFor(() => progress.status === 'completed', 'the progress view to complete');
    await progress.updateComplete;
    equal(progress.shadowRoot!.querySelector('[role="progressbar"]')!.getAttribute('aria-valuenow'), '100');
    equal(partOf(progress, 'status')!.textContent, 'Completed');
    const log = logOf(launcher)!;
    await waitFor(() => log.text.length === 30, 'all 30 lines');
    equal(log.text, Array.from({ length: 30 }, (_, i) => `line ${i + 1}`));
    await waitFor(() => !launcher.running, 'the launcher to be ready again');
    await expectAccessible(launcher);
  });

  it('cancels a running job from its cancel button', async () => {
    const canceled = nextEvent('backjob-canceled');
    const { launcher, progress } = await launch({ name: 'gated', params: JSON.stringify({ run: unique() }), cancelable: true });
    await waitFor(() => progress.indeterminate, 'the job to run, indeterminate');
    const cancel = await waitFor(() => partOf(progress, 'button'), 'the cancel button');
    cancel.click();
    const event = await canceled;
    equal(event.detail.jobId, launcher.jobId);
    await waitFor(() => partOf(progress, 'status')!.textContent === 'Canceled', 'the end in words');
    ok(!partOf(progress, 'button'), 'no cancel button any more');
    await waitFor(() => !launcher.running, 'the launcher to be ready again');
  });

  it('shows the failure reason', async () => {
    const failed = nextEvent('backjob-failed');
    const { progress } = await launch({ name: 'explode', params: JSON.stringify({ reason: 'Disk full', run: unique() }) });
    const event = await failed;
    ok(event.detail.reason.includes('Disk full'), event.detail.reason);
    await waitFor(() => partOf(progress, 'status')!.textContent === 'Failed', 'the end in words');
    ok(partOf(progress, 'error')!.textContent!.includes('Disk full'), 'the reason is shown');
    await expectAccessible(progress);
  });

  it('shows a hostile log line as text', async () => {
    const { launcher } = await launch({ name: 'gated', params: JSON.stringify({ run: unique() }), 'show-log': true });
    const log = logOf(launcher)!;
    await waitFor(() => log.text.length === 1, 'the line');
    equal(log.text[0], '<img src=x onerror="window.__backjobXss = true">');
    equal(log.shadowRoot!.querySelector('img'), null);
    ok(!(window as { __backjobXss?: boolean }).__backjobXss, 'no handler ran');
    await fetch(`/test/release/${launcher.jobId}`, { method: 'POST' });
    await waitFor(() => !launcher.running, 'the job to end');
  });

  it('loses no line and doubles none when the socket drops mid-stream', async () => {
    const lines = 150;
    const { launcher, progress } = await launch({ name: 'count', params: JSON.stringify({ lines, delayMs: 15, run: unique() }), 'show-log': true });
    const log = await waitFor(() => logOf(launcher), 'the log view');
    let drops = 0;
    for (const after of [20, 70]) {
      await waitFor(() => log.text.length >= after, `${after} lines`);
      const { dropped } = await (await fetch('/test/drop-sockets', { method: 'POST' })).json();
      drops += dropped;
      // The element notices the socket went away before the job is over.
      await waitFor(() => progress.disconnected || progress.status === 'completed', 'the drop to be noticed');
    }
    ok(drops >= 2, `the sockets were cut (${drops})`);
    await waitFor(() => progress.status === 'completed', 'the job to complete after reconnecting', 30_000);
    await waitFor(() => log.text.length >= lines, 'every line');
    equal(log.text, Array.from({ length: lines }, (_, i) => `line ${i + 1}`));
  });

  it('over Server-Sent Events (across origins, as the page sees it): the bar, the full log, and cancel', async () => {
    configureBackjob({ transport: 'sse' });
    // Another endpoint URL, so the page opens a new connection (over SSE) rather than share the socket.
    const sse = `${endpoint}?transport=sse`;
    // What the page asks of the network, seen from the page: the calls go on as they were.
    const requested: string[] = [];
    const realFetch = window.fetch;
    window.fetch = (input, init) => {
      requested.push(String(input instanceof Request ? input.url : input));
      return realFetch(input, init);
    };
    try {
      const completed = nextEvent('backjob-completed');
      const launcher = await mount('backjob-launcher', { endpoint: sse, name: 'count', params: JSON.stringify({ lines: 30, delayMs: 15, run: unique() }), 'show-log': true });
      partOf(launcher, 'button')!.click();
      const progress = await waitFor(() => progressOf(launcher), 'the progress view');
      await completed;
      await waitFor(() => progress.status === 'completed', 'the progress view to complete');
      const log = logOf(launcher)!;
      await waitFor(() => log.text.length === 30, 'all 30 lines');
      equal(log.text, Array.from({ length: 30 }, (_, i) => `line ${i + 1}`));
      ok(requested.some((url) => /\/backjob\/events\?/.test(url)), `the page read an event stream (${requested.join(', ')})`);
      cleanup();

      const canceled = nextEvent('backjob-canceled');
      const gated = await mount('backjob-launcher', { endpoint: sse, name: 'gated', params: JSON.stringify({ run: unique() }), cancelable: true });
      partOf(gated, 'button')!.click();
      const running = await waitFor(() => progressOf(gated), 'the progress view');
      await waitFor(() => running.indeterminate, 'the job to run');
      (await waitFor(() => partOf(running, 'button'), 'the cancel button')).click();
      await canceled;
      await waitFor(() => partOf(running, 'status')!.textContent === 'Canceled', 'the end in words');
    } finally {
      window.fetch = realFetch;
      configureBackjob({ transport: 'auto' });
    }
  });
});
