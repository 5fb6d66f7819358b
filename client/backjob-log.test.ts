import { emulateMedia, sendKeys } from '@web/test-runner-commands';
import './backjob-log.js';
import type { BackjobLog } from './backjob-log.js';
import { FakeConnection } from './testing/fake-connection.js';
import { cleanup, equal, expectAccessible, mount, nextFrame, ok, waitFor } from './testing/helpers.js';
import { hearAnnouncer } from './testing/speech.js';

const region = (element: BackjobLog) => element.shadowRoot!.querySelector<HTMLElement>('[role="log"]')!;
const shownLines = (element: BackjobLog) =>
  [...element.shadowRoot!.querySelectorAll('[part="line"]')].map((line) => line.textContent);
const atBottom = (r: HTMLElement) => r.scrollHeight - r.scrollTop - r.clientHeight <= 8;

async function mountLog(connection: FakeConnection, attributes: Record<string, string | boolean> = {}) {
  return mount('backjob-log', { 'job-id': 'job1', token: 't', ...attributes }, { connection });
}

async function settle(element: BackjobLog) {
  await element.updateComplete;
  await nextFrame();
}

describe('<backjob-log>', () => {
  afterEach(async () => {
    cleanup();
    document.documentElement.style.removeProperty('color-scheme');
    await emulateMedia({ colorScheme: 'light' });
  });

  it('is a labelled, keyboard-scrollable log region', async () => {
    const element = await mountLog(new FakeConnection(), { label: 'Import output' });
    const log = region(element);
    equal(log.getAttribute('aria-label'), 'Import output');
    equal(log.tabIndex, 0);
    await expectAccessible(element);
  });

  it('reads new lines politely by default, and not at all with live="off"', async () => {
    const connection = new FakeConnection();
    const chatty = await mountLog(connection);
    equal(region(chatty).getAttribute('aria-live'), 'polite');
    const quiet = await mountLog(connection, { live: 'off' });
    equal(region(quiet).getAttribute('aria-live'), 'off');
    connection.log('job1', 'still shown');
    await waitFor(() => shownLines(quiet).includes('still shown'), 'the line to show in the quiet log');
    await expectAccessible(quiet);
  });

  it('does not read out the history it receives on opening: it renders it with the region off, then goes live', async () => {
    const connection = new FakeConnection();
    connection.snapshot('job1', { status: 'running', name: 'import' });
    connection.log('job1', ...Array.from({ length: 50 }, (_, i) => `old line ${i + 1}`));
    const element = await mountLog(connection);
    equal(shownLines(element).length, 50);
    equal(region(element).getAttribute('aria-live'), 'off', 'the history was put on screen with the live region off');
    await waitFor(() => region(element).getAttribute('aria-live') === 'polite', 'the region to go live after the history');
    connection.log('job1', 'new line');
    await element.updateComplete;
    equal(shownLines(element).at(-1), 'new line');
    equal(region(element).getAttribute('aria-live'), 'polite', 'a line that arrives while watching is read');
    await expectAccessible(element);
  });

  it('keeps the region off for history the server replays after its snapshot, page by page', async () => {
    const connection = new FakeConnection();
    // As on a page opened on a running job: the snapshot comes first, then the stored lines up to its seq.
    connection.snapshot('job1', { status: 'running', seq: 10 });
    const element = await mountLog(connection);
    equal(region(element).getAttribute('aria-live'), 'polite', 'nothing to replay yet');
    const line = (seq: number) => ({ type: 'job:log', line: `line ${seq}`, jobId: 'job1', seq, at: Date.now() }) as const;
    connection.send('job1', { lines: [line(2), line(4)] });
    await element.updateComplete;
    equal(region(element).getAttribute('aria-live'), 'off', 'the first page of history');
    connection.send('job1', { lines: [line(7)] });
    await element.updateComplete;
    equal(region(element).getAttribute('aria-live'), 'off', 'the next page of history');
    await waitFor(() => region(element).getAttribute('aria-live') === 'polite', 'the region to go live after the history');
    connection.send('job1', { lines: [line(11)] });
    await element.updateComplete;
    equal(region(element).getAttribute('aria-live'), 'polite', 'a live line after the snapshot is read');
    equal(shownLines(element), ['line 2', 'line 4', 'line 7', 'line 11']);
  });

  it('stays off with live="off", history or not', async () => {
    const connection = new FakeConnection();
    connection.log('job1', 'old');
    const element = await mountLog(connection, { live: 'off' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    connection.log('job1', 'new');
    await element.updateComplete;
    equal(region(element).getAttribute('aria-live'), 'off');
  });

  it("is named after its job by default, so two logs on a page don't share a name", async () => {
    const connection = new FakeConnection();
    connection.snapshot('job1', { name: 'reports/broken', title: 'Broken report' });
    connection.snapshot('job2', { name: 'archive/rebuild' });
    const first = await mountLog(connection);
    const second = await mount('backjob-log', { 'job-id': 'job2' }, { connection });
    equal(region(first).getAttribute('aria-label'), 'Log of Broken report', "the job's title");
    equal(region(second).getAttribute('aria-label'), 'Log of Archive rebuild', 'or its name made readable');
    const unknown = await mount('backjob-log', { 'job-id': 'job3' }, { connection });
    equal(region(unknown).getAttribute('aria-label'), 'Job log', 'before the job is known');
  });

  for (const scheme of ['light', 'dark'] as const) {
    const states = {
      waiting: { status: 'waiting' },
      running: { status: 'running', progress: 30 },
      indeterminate: { status: 'running', progress: null },
      completed: { status: 'completed' },
      failed: { status: 'failed', error: 'Broke' },
      canceled: { status: 'canceled', error: 'Canceled' },
    } as const;
    for (const [state, snapshot] of Object.entries(states)) {
      it(`shows its lines while ${state} (${scheme}) and passes axe`, async () => {
        // A page that follows the OS (the elements follow the page): dark when the OS is.
        document.documentElement.style.setProperty('color-scheme', 'light dark');
        await emulateMedia({ colorScheme: scheme });
        const connection = new FakeConnection();
        connection.snapshot('job1', snapshot);
        if (state !== 'waiting') connection.log('job1', 'first', 'second');
        const element = await mountLog(connection);
        equal(shownLines(element), state === 'waiting' ? [] : ['first', 'second']);
        await expectAccessible(element);
      });
    }
  }

  it('shows a line of markup as text, never as HTML', async () => {
    const connection = new FakeConnection();
    const element = await mountLog(connection);
    const markup = '<img src=x onerror="window.__logXss = true"><b>bold</b>';
    connection.log('job1', markup);
    await settle(element);
    equal(shownLines(element), [markup]);
    equal(region(element).querySelector('img'), null, 'no element was created');
    equal(region(element).querySelector('b'), null, 'no element was created');
    ok(!(window as { __logXss?: boolean }).__logXss, 'no handler ran');
  });

  it('keeps only the newest max-lines', async () => {
    const connection = new FakeConnection();
    const element = await mountLog(connection, { 'max-lines': '3' });
    connection.log('job1', 'a', 'b');
    connection.log('job1', 'c', 'd', 'e');
    await settle(element);
    equal(shownLines(element), ['c', 'd', 'e']);
    element.maxLines = 2;
    await settle(element);
    equal(shownLines(element), ['d', 'e']);
  });

  it('keeps every line across a reconnect, shows each once, and starts over on reset', async () => {
    const connection = new FakeConnection();
    const element = await mountLog(connection);
    connection.log('job1', 'one', 'two');
    connection.setState('reconnecting');
    connection.setState('open');
    connection.log('job1', 'three');
    // A line the element already has, redelivered, is not shown twice.
    const again = { type: 'job:log', line: 'two', jobId: 'job1', seq: 2, at: Date.now() } as const;
    connection.send('job1', { lines: [again] });
    await settle(element);
    equal(shownLines(element), ['one', 'two', 'three']);
    connection.send('job1', { reset: true, lines: [{ type: 'job:log', line: 'fresh', jobId: 'job1', seq: 9, at: Date.now() }] });
    await settle(element);
    equal(shownLines(element), ['fresh']);
  });

  it('follows the tail, stops when the user scrolls up, and follows again at the bottom', async () => {
    const connection = new FakeConnection();
    const element = await mountLog(connection);
    element.style.setProperty('--backjob-log-height', '6rem');
    connection.log('job1', ...Array.from({ length: 40 }, (_, i) => `line ${i + 1}`));
    await settle(element);
    const log = region(element);
    ok(log.scrollHeight > log.clientHeight, 'the log overflows');
    ok(atBottom(log), 'follows the newest line');

    log.focus();
    await sendKeys({ press: 'Home' });
    await waitFor(() => log.scrollTop === 0 && !element.following, 'the log to reach the top and stop following');
    const top = log.scrollTop;
    connection.log('job1', 'line 41');
    await settle(element);
    equal(log.scrollTop, top, 'stays where the user scrolled');
    equal(shownLines(element).at(-1), 'line 41');

    await sendKeys({ press: 'End' });
    await waitFor(() => atBottom(log) && element.following, 'the log to reach the bottom and follow again');
    connection.log('job1', 'line 42');
    await settle(element);
    ok(atBottom(log), 'follows the newest line again');
  });

  it("follows the new job's tail after its job changed, even if the user had scrolled up in the previous one", async () => {
    const connection = new FakeConnection();
    const element = await mountLog(connection);
    element.style.setProperty('--backjob-log-height', '6rem');
    connection.log('job1', ...Array.from({ length: 40 }, (_, i) => `job1 line ${i + 1}`));
    await settle(element);
    const log = region(element);
    log.focus();
    await sendKeys({ press: 'Home' });
    await waitFor(() => log.scrollTop === 0 && !element.following, 'the log to reach the top and stop following');

    element.jobId = 'job2';
    await settle(element);
    connection.log('job2', ...Array.from({ length: 40 }, (_, i) => `job2 line ${i + 1}`));
    await settle(element);
    ok(log.scrollHeight > log.clientHeight, 'the log overflows');
    ok(element.following, 'follows again');
    ok(atBottom(log), "shows the new job's newest line");
  });

  it('says "No output" for an ended job that wrote nothing, not "No output yet"', async () => {
    const connection = new FakeConnection();
    connection.snapshot('job1', { status: 'running' });
    const element = await mountLog(connection);
    const empty = () => element.shadowRoot!.querySelector('[part="empty"]')?.textContent;
    equal(empty(), 'No output yet');
    connection.snapshot('job1', { status: 'failed', error: 'Broke' });
    await element.updateComplete;
    equal(empty(), 'No output');
    await expectAccessible(element);
  });

  it('in summary mode reads no line, and says how many came through the page announcer', async () => {
    const speech = hearAnnouncer(600);
    try {
      const connection = new FakeConnection();
      connection.snapshot('job1', { status: 'running' });
      const element = await mountLog(connection, { live: 'summary' });
      equal(region(element).getAttribute('aria-live'), 'off', 'the region itself reads nothing');
      connection.log('job1', 'one');
      await waitFor(() => speech.heard.length === 1, 'the first summary');
      connection.log('job1', 'two', 'three');
      connection.log('job1', 'four');
      await waitFor(() => speech.heard.length === 2, 'the second summary');
      equal(speech.heard.map((h) => h.text), ['1 new log line', '3 new log lines']);
      equal(element.text, ['one', 'two', 'three', 'four']);
    } finally {
      speech.stop();
    }
  });

  it('in summary mode says the same count again when as many new lines came again', async () => {
    const speech = hearAnnouncer(600);
    try {
      const connection = new FakeConnection();
      connection.snapshot('job1', { status: 'running' });
      await mountLog(connection, { live: 'summary' });
      connection.log('job1', 'one', 'two');
      await waitFor(() => speech.heard.length === 1, 'the first summary');
      connection.log('job1', 'three', 'four');
      await waitFor(() => speech.heard.length === 2, 'the second summary', 2_000).catch(() => undefined);
      equal(speech.heard.map((h) => h.text), ['2 new log lines', '2 new log lines']);
    } finally {
      speech.stop();
    }
  });

  it('shows why a job cannot be watched', async () => {
    const connection = new FakeConnection();
    connection.refuse('job1', 'BACKJOB_ERR_NOT_FOUND', 'No such job');
    const element = await mountLog(connection);
    equal(element.shadowRoot!.querySelector('[part="error"]')!.textContent, 'No such job, or not yours to watch');
    await expectAccessible(element);
  });

  it('renders disconnected with its lines kept', async () => {
    const connection = new FakeConnection();
    connection.snapshot('job1', { status: 'running' });
    connection.log('job1', 'kept');
    const element = await mountLog(connection);
    connection.setState('reconnecting');
    await settle(element);
    equal(shownLines(element), ['kept']);
    await expectAccessible(element);
  });
});
