import { emulateMedia, sendKeys } from '@web/test-runner-commands';
import type { JobStatus } from '../shared/protocol.js';
import './backjob-progress.js';
import type { BackjobProgress } from './backjob-progress.js';
import { FakeConnection } from './testing/fake-connection.js';
import { announcer } from './announcer.js';
import { cleanup, equal, expectAccessible, mount, ok, waitFor } from './testing/helpers.js';
import { hearAnnouncer } from './testing/speech.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const part = (element: Element, name: string) => element.shadowRoot!.querySelector<HTMLElement>(`[part~="${name}"]`);
const bar = (element: Element) => element.shadowRoot!.querySelector<HTMLElement>('[role="progressbar"]')!;

async function mountProgress(connection: FakeConnection, attributes: Record<string, string | boolean> = {}) {
  const element = await mount('backjob-progress', { 'job-id': 'job1', token: 't0k3n', ...attributes }, { connection });
  return element;
}

async function render(element: BackjobProgress) {
  await element.updateComplete;
  return element;
}

describe('<backjob-progress>', () => {
  afterEach(async () => {
    cleanup();
    document.documentElement.style.removeProperty('color-scheme');
    await emulateMedia({ colorScheme: 'light' });
  });

  it('watches its job with its token, and stops when removed', async () => {
    const connection = new FakeConnection();
    const element = await mountProgress(connection);
    equal(connection.watchers('job1'), 1);
    element.remove();
    equal(connection.watchers('job1'), 0);
  });

  it('watches nothing while out of the document, even when its job changes meanwhile', async () => {
    const connection = new FakeConnection();
    connection.snapshot('job2', { status: 'running', progress: 40 });
    const element = await mountProgress(connection);
    element.remove();
    element.jobId = 'job2';
    await render(element);
    equal(connection.watchers('job1'), 0);
    equal(connection.watchers('job2'), 0, 'a detached element holds no watch (nothing would ever release it)');
    document.body.append(element);
    await render(element);
    equal(connection.watchers('job2'), 1, 'put back, it watches its job');
    equal(bar(element).getAttribute('aria-valuenow'), '40');
  });

  it('says it is connecting until the first snapshot, without a value', async () => {
    const element = await mountProgress(new FakeConnection());
    equal(part(element, 'status')!.textContent, 'Connecting…');
    ok(!bar(element).hasAttribute('aria-valuenow'), 'no aria-valuenow before anything is known');
    await expectAccessible(element);
  });

  const states: Array<{ state: string; status: JobStatus; progress: number | null; words: string; extra?: object }> = [
    { state: 'waiting', status: 'waiting', progress: 0, words: 'Waiting' },
    { state: 'running', status: 'running', progress: 42, words: '42%' },
    { state: 'indeterminate', status: 'running', progress: null, words: 'Running' },
    { state: 'completed', status: 'completed', progress: 100, words: 'Completed', extra: { result: { ok: true } } },
    { state: 'failed', status: 'failed', progress: 30, words: 'Failed', extra: { error: 'Disk full', errorCode: 'BACKJOB_ERR_X' } },
    { state: 'canceled', status: 'canceled', progress: 10, words: 'Canceled', extra: { error: 'Canceled by the user' } },
  ];

  for (const { state, status, progress, words, extra } of states) {
    for (const scheme of ['light', 'dark'] as const) {
      it(`renders ${state} (${scheme}) in words and passes axe`, async () => {
        // A page that follows the OS (the elements follow the page): dark when the OS is.
        document.documentElement.style.setProperty('color-scheme', 'light dark');
        await emulateMedia({ colorScheme: scheme });
        const connection = new FakeConnection();
        const startedAt = Date.now() - 10_000;
        connection.snapshot('job1', {
          name: 'export',
          status,
          progress,
          text: 'Exporting rows',
          startedAt: status === 'waiting' ? undefined : startedAt,
          endedAt: ['completed', 'failed', 'canceled'].includes(status) ? startedAt + 8_000 : undefined,
          ...extra,
        });
        const element = await mountProgress(connection, { cancelable: true });
        equal(element.getAttribute('status'), status);
        equal(part(element, 'status')!.textContent, words);
        equal(part(element, 'label')!.textContent, 'Export', 'the job name made readable, not "Progress of export"');
        const ended = ['completed', 'failed', 'canceled'].includes(status);
        // Once ended, the last status text is history: only the state is shown.
        equal(part(element, 'text')?.textContent ?? '', ended ? '' : 'Exporting rows');
        const track = bar(element);
        equal(track.getAttribute('aria-valuemin'), '0');
        equal(track.getAttribute('aria-valuemax'), '100');
        if (progress === null) {
          ok(!track.hasAttribute('aria-valuenow'), 'aria-valuenow is omitted while indeterminate');
          ok(element.indeterminate, 'reflects indeterminate');
        } else {
          equal(track.getAttribute('aria-valuenow'), String(progress));
        }
        equal(Boolean(part(element, 'button')), !ended, 'the cancel button shows only while the job can be canceled');
        if (extra && 'error' in extra) equal(part(element, 'error')!.textContent, (extra as { error: string }).error);
        if (status === 'running' && progress) {
          ok(/^Elapsed 00:1\d · about 1\d seconds left$/.test(part(element, 'time')!.textContent!), part(element, 'time')!.textContent!);
        }
        if (ended) equal(part(element, 'time')!.textContent, 'Elapsed 00:08');
        await expectAccessible(element);
      });
    }
  }

  it('renders disconnected while the socket retries, and resumes', async () => {
    const connection = new FakeConnection();
    connection.snapshot('job1', { status: 'running', progress: 50 });
    const element = await mountProgress(connection);
    connection.setState('reconnecting');
    await render(element);
    ok(element.disconnected, 'reflects disconnected');
    equal(part(element, 'status')!.textContent, 'Reconnecting…');
    await expectAccessible(element);
    connection.setState('open');
    await render(element);
    ok(!element.disconnected, 'no longer disconnected');
    equal(part(element, 'status')!.textContent, '50%');
  });

  it('keeps counting the elapsed time of a running job while the connection reconnects', async () => {
    const connection = new FakeConnection();
    connection.snapshot('job1', { status: 'running', progress: 50, startedAt: Date.now() - 10_000 });
    const element = await mountProgress(connection);
    ok(/^Elapsed 00:1[01]/.test(part(element, 'time')!.textContent!), part(element, 'time')!.textContent!);
    connection.setState('reconnecting');
    await render(element);
    await waitFor(() => part(element, 'time')!.textContent!.startsWith('Elapsed 00:12'), 'the elapsed time to reach 0:12 while reconnecting', 4_000);
    equal(part(element, 'status')!.textContent, 'Reconnecting…');
    // No estimate while no update can arrive: it would only grow (0:09 → 0:36 in 10 s, before).
    equal(part(element, 'time')!.textContent, 'Elapsed 00:12', 'the time left is hidden while disconnected');
    connection.setState('open');
    await render(element);
    ok(/left$/.test(part(element, 'time')!.textContent!), `the estimate is back once connected (${part(element, 'time')!.textContent})`);
  });

  it('never says "about 0:00 left": a job almost done has a few seconds left, a finished one none', async () => {
    const connection = new FakeConnection();
    connection.snapshot('job1', { status: 'running', progress: 99.96, startedAt: Date.now() - 10_000 });
    const element = await mountProgress(connection);
    equal(part(element, 'time')!.textContent, 'Elapsed 00:10 · about 5 seconds left');
    connection.snapshot('job1', { progress: 100 });
    await render(element);
    equal(part(element, 'time')!.textContent, 'Elapsed 00:10', 'nothing left to estimate at 100 %');
  });

  it('without a job-id says there is no job yet, not "Connecting…" forever, and watches nothing', async () => {
    const connection = new FakeConnection();
    const element = await mount('backjob-progress', {}, { connection });
    equal(part(element, 'status')!.textContent, 'No job yet');
    equal(part(element, 'label')!.textContent, 'Job progress');
    ok(!bar(element).hasAttribute('aria-valuenow'), 'no value');
    ok(!part(element, 'details'), 'no empty details row');
    await expectAccessible(element);
    element.jobId = 'job1';
    await render(element);
    equal(part(element, 'status')!.textContent, 'Connecting…', 'given a job, it connects');
    equal(connection.watchers('job1'), 1);
  });

  it('shows an icon beside the state words, hidden from assistive technology', async () => {
    const connection = new FakeConnection();
    for (const status of ['waiting', 'running', 'completed', 'failed', 'canceled'] as const) {
      connection.snapshot('job1', { status, progress: 50 });
      const element = await mountProgress(connection);
      const icon = part(element, 'status')!.querySelector('svg')!;
      ok(icon, `an icon while ${status}`);
      equal(icon.getAttribute('aria-hidden'), 'true');
      ok(part(element, 'status')!.textContent!.trim().length > 0, 'and the words');
      cleanup();
    }
  });

  it('uses the job\'s title as its default label, else its name made readable, never "Progress of METHOD /path"', async () => {
    const connection = new FakeConnection();
    connection.snapshot('titled', { name: 'reports/quarterly', title: 'Quarterly report', status: 'running', progress: 5 });
    connection.snapshot('route', { name: 'POST /exports/contacts', status: 'running', progress: 5 });
    equal(part(await mountProgress(connection, { 'job-id': 'titled' }), 'label')!.textContent, 'Quarterly report');
    equal(part(await mountProgress(connection, { 'job-id': 'route' }), 'label')!.textContent, 'Exports contacts');
  });

  for (const [skew, words] of [[120_000, 'ahead of'], [-120_000, 'behind']] as const) {
    it(`measures elapsed and time left on the server's clock when it is ${words} the browser's`, async () => {
      const connection = new FakeConnection();
      connection.clockOffset = skew;
      const serverNow = Date.now() + skew;
      connection.snapshot('job1', { status: 'running', progress: 50, startedAt: serverNow - 30_000 });
      const element = await mountProgress(connection);
      ok(/^Elapsed 00:3[01] · about 3[05] seconds left$/.test(part(element, 'time')!.textContent!), part(element, 'time')!.textContent!);
      connection.snapshot('job1', { status: 'completed', progress: 100, endedAt: serverNow + 1_000 });
      await render(element);
      equal(part(element, 'time')!.textContent, 'Elapsed 00:31');
    });
  }

  it('shows why a job cannot be watched', async () => {
    const connection = new FakeConnection();
    connection.refuse('job1', 'BACKJOB_ERR_FORBIDDEN', 'You may not watch this job');
    const element = await mountProgress(connection);
    equal(part(element, 'status')!.textContent, 'Unavailable');
    equal(part(element, 'error')!.getAttribute('role'), 'alert');
    // A known refusal is told in the element's language, whatever words the server used.
    equal(part(element, 'error')!.textContent, 'No such job, or not yours to watch');
    await expectAccessible(element);
  });

  it('overrides the default label', async () => {
    const connection = new FakeConnection();
    connection.snapshot('job1', { status: 'running', progress: 5 });
    const element = await mountProgress(connection, { label: 'Nightly export' });
    equal(part(element, 'label')!.textContent, 'Nightly export');
    equal(bar(element).getAttribute('aria-labelledby'), 'label');
  });

  it('fires bubbling, composed events for progress and the end, each once', async () => {
    const connection = new FakeConnection();
    const seen: string[] = [];
    const record = (event: Event) => {
      ok(event.bubbles && event.composed, `${event.type} bubbles and is composed`);
      seen.push(`${event.type}:${JSON.stringify((event as CustomEvent).detail.progress ?? (event as CustomEvent).detail.result ?? null)}`);
    };
    for (const type of ['backjob-progress', 'backjob-completed', 'backjob-failed', 'backjob-canceled']) {
      document.addEventListener(type, record);
    }
    try {
      const element = await mountProgress(connection);
      connection.snapshot('job1', { status: 'running', progress: 10 });
      await render(element);
      connection.snapshot('job1', { status: 'running', progress: 60 });
      await render(element);
      connection.snapshot('job1', { status: 'completed', progress: 100, result: 7 });
      await render(element);
      connection.snapshot('job1', {}); // a repeat changes nothing
      await render(element);
      equal(seen, ['backjob-progress:10', 'backjob-progress:60', 'backjob-completed:7']);
    } finally {
      for (const type of ['backjob-progress', 'backjob-completed', 'backjob-failed', 'backjob-canceled']) {
        document.removeEventListener(type, record);
      }
    }
  });

  it('fires backjob-failed with the reason and code', async () => {
    const connection = new FakeConnection();
    connection.snapshot('job1', { status: 'failed', error: 'Boom', errorCode: 'BACKJOB_ERR_STALLED' });
    let detail: { reason: string; code?: string } | undefined;
    document.addEventListener('backjob-failed', (event) => (detail = event.detail), { once: true });
    await mountProgress(connection);
    equal(detail?.reason, 'Boom');
    equal(detail?.code, 'BACKJOB_ERR_STALLED');
  });

  describe('speech, through the page\'s one announcer', () => {
    let speech: ReturnType<typeof hearAnnouncer>;
    const said = () => speech.heard.map((h) => h.text);
    // The page's announcer with its rules as in production, on a shorter clock.
    beforeEach(() => {
      speech = hearAnnouncer(800);
    });
    afterEach(() => speech.stop());

    it('says a milestone as the value it has when it goes out, throttled, and the end at once', async () => {
      const connection = new FakeConnection();
      connection.snapshot('job1', { status: 'running', progress: 0, name: 'import' });
      const element = await mountProgress(connection);
      connection.snapshot('job1', { progress: 30 });
      await render(element);
      await waitFor(() => said().length === 1, 'the first milestone');
      equal(said(), ['Import: 30%']);
      // Two more milestones too soon after: they wait, and go out as one, with the value of then.
      connection.snapshot('job1', { progress: 55 });
      await render(element);
      connection.snapshot('job1', { progress: 80 });
      await render(element);
      await sleep(300);
      equal(said().length, 1, 'throttled');
      await waitFor(() => said().length === 2, 'the throttled milestone');
      equal(said()[1], 'Import: 80%');
      connection.snapshot('job1', { status: 'failed', error: 'Out of memory' });
      await render(element);
      await waitFor(() => said().length === 3, 'the end');
      equal(said()[2], 'Import: failed: Out of memory');
      const gap = speech.heard[2]!.at - speech.heard[1]!.at;
      ok(gap < 800, `the end did not wait for the throttle (${Math.round(gap)} ms after the milestone)`);
    });

    it('never says a milestone after the end: a waiting one is dropped', async () => {
      const connection = new FakeConnection();
      connection.snapshot('job1', { status: 'running', progress: 0, name: 'import' });
      const element = await mountProgress(connection);
      connection.snapshot('job1', { progress: 30 });
      await render(element);
      await waitFor(() => said().length === 1, 'the first milestone');
      connection.snapshot('job1', { progress: 80 }); // waits for its turn…
      await render(element);
      connection.snapshot('job1', { status: 'completed', progress: 100 }); // …which never comes
      await render(element);
      await sleep(1_200);
      equal(said(), ['Import: 30%', 'Import: completed']);
    });

    it('says how the job ended even when the page removes the element as it ends', async () => {
      const connection = new FakeConnection();
      connection.snapshot('job1', { status: 'running', progress: 10, name: 'import' });
      const element = await mountProgress(connection);
      // What an app does on the end: show the result instead of the bar.
      element.addEventListener('backjob-completed', () => element.remove(), { once: true });
      connection.snapshot('job1', { status: 'completed', progress: 100 });
      await render(element);
      ok(!element.isConnected, 'removed on its end');
      await sleep(600);
      equal(said(), ['Import: completed']);
    });

    it('puts the live region in the page before the first thing it says (a region added with its text is not read)', async () => {
      announcer.element?.remove(); // a page where nothing was said yet, or whose body was replaced since
      const inserted: number[] = [];
      const observer = new MutationObserver((records) => {
        for (const record of records) for (const node of record.addedNodes) if (node === announcer.element) inserted.push(performance.now());
      });
      observer.observe(document.body, { childList: true });
      const connection = new FakeConnection();
      connection.snapshot('job1', { status: 'running', progress: 0, name: 'import' });
      const element = await mountProgress(connection);
      connection.snapshot('job1', { progress: 30 });
      await render(element);
      await waitFor(() => said().length === 1, 'the milestone');
      observer.disconnect();
      ok(inserted.length === 1, 'the region was added once');
      const lead = speech.heard[0]!.at - inserted[0]!;
      ok(lead >= 100, `the region was in the page ${Math.round(lead)} ms before its first text`);
      equal(said(), ['Import: 30%']);
    });

    it('speaks from inside an open modal dialog (the page behind it is inert), and from the page again once it closes', async () => {
      const dialog = document.createElement('dialog');
      document.body.append(dialog);
      const connection = new FakeConnection();
      connection.snapshot('job1', { status: 'running', progress: 0, name: 'import' });
      const element = await mount('backjob-progress', { 'job-id': 'job1' }, { connection });
      dialog.append(element);
      dialog.showModal();
      await element.updateComplete;
      connection.snapshot('job1', { progress: 30 });
      await render(element);
      await waitFor(() => said().length === 1, 'the milestone');
      ok(dialog.contains(announcer.element!), 'the region is inside the modal dialog, not in the inert page behind it');
      dialog.close();
      connection.snapshot('job1', { status: 'completed', progress: 100 });
      await render(element);
      await waitFor(() => said().length === 2, 'the end', 2_000).catch(() => undefined);
      equal(said(), ['Import: 30%', 'Import: completed']);
      ok(!dialog.contains(announcer.element!), 'not left inside the closed dialog');
    });

    it('empties the region soon after each announcement, so no stale value stays readable', async () => {
      const connection = new FakeConnection();
      connection.snapshot('job1', { status: 'running', progress: 0, name: 'import' });
      const element = await mountProgress(connection);
      connection.snapshot('job1', { progress: 30 });
      await render(element);
      await waitFor(() => said().length === 1, 'the milestone');
      const region = announcer.element!;
      equal(region.textContent, 'Import: 30%');
      equal(region.getAttribute('aria-live'), 'polite');
      await waitFor(() => region.textContent === '', 'the region to empty', announcer.clearAfter + 500);
      ok(!element.shadowRoot!.querySelector('[aria-live]'), 'no live region of its own that could go stale');
    });

    it('says the start of a job it watches start, and how it ended', async () => {
      const connection = new FakeConnection();
      const element = await mountProgress(connection);
      connection.snapshot('job1', { status: 'waiting', name: 'reports/quarterly', title: 'Quarterly report' });
      await render(element);
      connection.snapshot('job1', { status: 'running', progress: 5 });
      await render(element);
      await waitFor(() => said().length === 1, 'the start');
      await sleep(1_000);
      equal(said(), ['Quarterly report: started'], 'waiting then running, said once');
    });

    it('says a lost and a restored connection once each, however many elements share it', async () => {
      const connection = new FakeConnection();
      connection.snapshot('job1', { status: 'running', progress: 10, name: 'a' });
      connection.snapshot('job2', { status: 'running', progress: 10, name: 'b' });
      await mountProgress(connection);
      await mountProgress(connection, { 'job-id': 'job2' });
      connection.setState('reconnecting');
      await waitFor(() => said().length === 1, 'the loss');
      await sleep(1_000);
      connection.setState('open');
      await waitFor(() => said().length === 2, 'the return');
      await sleep(1_000);
      equal(said(), ['Connection lost, reconnecting', 'Connection restored']);
    });

    it('says nothing of a blip: a connection lost and back before its turn came', async () => {
      const connection = new FakeConnection();
      connection.snapshot('job1', { status: 'running', progress: 0, name: 'a' });
      connection.snapshot('job2', { status: 'running', progress: 0, name: 'b' });
      const first = await mountProgress(connection);
      await mountProgress(connection, { 'job-id': 'job2' });
      connection.snapshot('job1', { progress: 30 });
      await render(first);
      await waitFor(() => said().length === 1, 'a milestone');
      connection.setState('reconnecting'); // waits for its turn…
      await sleep(100);
      connection.setState('open'); // …and is back before it came
      await sleep(1_500);
      equal(said(), ['A: 30%']);
    });

    it('says nothing about the state it first sees: only what changes while it watches', async () => {
      const connection = new FakeConnection();
      const hourAgo = Date.now() - 3_600_000;
      connection.snapshot('done', { status: 'completed', progress: 100, name: 'done', startedAt: hourAgo, endedAt: hourAgo + 1_000 });
      connection.snapshot('broke', { status: 'failed', progress: 40, name: 'broke', error: 'Boom', startedAt: hourAgo, endedAt: hourAgo + 1_000 });
      connection.snapshot('half', { status: 'running', progress: 60, name: 'half', startedAt: hourAgo });
      let ends = 0;
      const countEnd = () => ends++;
      document.addEventListener('backjob-completed', countEnd);
      document.addEventListener('backjob-failed', countEnd);
      try {
        await mountProgress(connection, { 'job-id': 'done' });
        await mountProgress(connection, { 'job-id': 'broke' });
        const half = await mountProgress(connection, { 'job-id': 'half' });
        equal(ends, 2, 'the end events still fire for scripts');
        await sleep(1_000);
        equal(said(), [], 'neither an old end, nor a failure, nor the milestone already passed');
        connection.snapshot('half', { progress: 70 });
        await render(half);
        await sleep(300);
        equal(said(), [], 'no milestone crossed since');
        connection.snapshot('half', { progress: 80 });
        await render(half);
        await waitFor(() => said().length === 1, 'a milestone reached while watching');
        equal(said(), ['Half: 80%']);
        connection.snapshot('half', { status: 'completed', progress: 100 });
        await render(half);
        await waitFor(() => said().length === 2, 'the end');
        equal(said()[1], 'Half: completed');
        // A new job in the same element: its first state is a baseline again.
        connection.snapshot('done2', { status: 'completed', progress: 100, name: 'done2' });
        half.jobId = 'done2';
        await render(half);
        await sleep(1_000);
        equal(said().length, 2, 'the next job starts quiet too');
      } finally {
        document.removeEventListener('backjob-completed', countEnd);
        document.removeEventListener('backjob-failed', countEnd);
      }
    });

    it('with announceInitial (a job just started from the page), says even the state it first sees', async () => {
      const connection = new FakeConnection();
      connection.snapshot('job1', { status: 'completed', progress: 100, name: 'quick' });
      await mount('backjob-progress', { 'job-id': 'job1' }, { connection, announceInitial: true });
      await waitFor(() => said().length === 1, 'the end');
      equal(said(), ['Quick: completed']);
    });

    it('drops a milestone still waiting when its job is replaced', async () => {
      const connection = new FakeConnection();
      connection.snapshot('job1', { status: 'running', progress: 0, name: 'import' });
      connection.snapshot('job2', { status: 'running', progress: 10, name: 'export' });
      const element = await mountProgress(connection);
      connection.snapshot('job1', { progress: 30 });
      await render(element);
      await waitFor(() => said().length === 1, 'the first milestone');
      connection.snapshot('job1', { progress: 55 }); // throttled: waits for its turn
      await render(element);
      element.jobId = 'job2';
      await render(element);
      // Long enough for the throttled milestone to have come out, had it not been dropped.
      await sleep(1_500);
      equal(said(), ['Import: 30%'], 'nothing about the job no longer shown');
    });
  });

  it('gives the bar a value text that says each thing once', async () => {
    const connection = new FakeConnection();
    connection.snapshot('job1', { status: 'running', progress: 42 });
    const element = await mountProgress(connection);
    equal(bar(element).getAttribute('aria-valuetext'), '42%');
    connection.setState('reconnecting');
    await render(element);
    equal(bar(element).getAttribute('aria-valuetext'), '42%, Reconnecting…');
    connection.setState('open');
    connection.snapshot('job1', { status: 'completed', progress: 100 });
    await render(element);
    equal(bar(element).getAttribute('aria-valuetext'), '100%, Completed');
  });

  for (const status of ['failed', 'canceled', 'waiting'] as const) {
    it(`gives no number for a job whose progress is unknown, also once ${status}`, async () => {
      const connection = new FakeConnection();
      connection.snapshot('job1', { status: 'running', progress: null, startedAt: Date.now() - 5_000 });
      const element = await mountProgress(connection);
      ok(!bar(element).hasAttribute('aria-valuenow'), 'no aria-valuenow while running');
      equal(bar(element).getAttribute('aria-valuetext'), 'Running');
      const words = { failed: 'Failed', canceled: 'Canceled', waiting: 'Waiting' }[status];
      connection.snapshot('job1', { status, ...(status !== 'waiting' && { error: 'Feed unreachable', endedAt: Date.now() }) });
      await render(element);
      equal(part(element, 'status')!.textContent, words);
      ok(!bar(element).hasAttribute('aria-valuenow'), `no aria-valuenow once ${status} (got ${bar(element).getAttribute('aria-valuenow')})`);
      equal(bar(element).getAttribute('aria-valuetext'), words, 'words only, no "0%"');
      await expectAccessible(element);
    });
  }

  it('cancels from the keyboard, with a visible focus ring', async () => {
    const connection = new FakeConnection();
    connection.snapshot('job1', { status: 'running', progress: 20 });
    const element = await mountProgress(connection, { cancelable: true });
    const button = part(element, 'button')!;
    await sendKeys({ press: 'Tab' });
    equal(element.shadowRoot!.activeElement, button, 'Tab reaches the cancel button');
    equal(getComputedStyle(button).outlineStyle, 'solid', 'focus is visible');
    await sendKeys({ press: 'Enter' });
    await waitFor(() => connection.cancels.length === 1, 'a cancel request');
    equal(connection.cancels[0], { jobId: 'job1', token: 't0k3n' });
    await render(element);
    equal(button.textContent!.trim(), 'Canceling…');
    // Pressing again while the cancel is under way sends nothing more.
    await sendKeys({ press: 'Space' });
    equal(connection.cancels.length, 1);
    connection.snapshot('job1', { status: 'canceled', error: 'Canceled by the user' });
    await render(element);
    ok(!part(element, 'button'), 'no cancel button once canceled');
    equal(part(element, 'status')!.textContent, 'Canceled');
  });

  it('does not repeat a reason that only restates the end state', async () => {
    const connection = new FakeConnection();
    connection.snapshot('job1', { status: 'canceled', progress: 30, error: 'canceled' });
    const element = await mountProgress(connection);
    equal(part(element, 'status')!.textContent, 'Canceled');
    ok(!part(element, 'error'), 'no second "canceled" below the status');
  });

  it('keeps keyboard focus in the element when the focused cancel button goes away', async () => {
    const connection = new FakeConnection();
    connection.snapshot('job1', { status: 'running', progress: 20 });
    const element = await mountProgress(connection, { cancelable: true });
    await sendKeys({ press: 'Tab' });
    equal(element.shadowRoot!.activeElement, part(element, 'button'), 'Tab reaches the cancel button');
    connection.snapshot('job1', { status: 'completed', progress: 100 });
    await render(element);
    ok(!part(element, 'button'), 'no cancel button once ended');
    equal(element.shadowRoot!.activeElement, bar(element), 'focus moved to the bar, which now says how the job ended');
    equal(bar(element).getAttribute('tabindex'), '-1', 'the bar takes focus only when given it, never from Tab');
    equal(getComputedStyle(bar(element)).outlineStyle, 'solid', 'focus is visible');
    await expectAccessible(element);
  });

  it('does not move focus to the bar when its job changes while the cancel button has focus', async () => {
    /** Delivers each watch's first update a moment later, as the real connection does. */
    class LateConnection extends FakeConnection {
      override watch(jobId: string, token: string | undefined, listener: Parameters<FakeConnection['watch']>[2]): () => void {
        let stop: (() => void) | undefined;
        let stopped = false;
        setTimeout(() => {
          if (!stopped) stop = super.watch(jobId, token, listener);
        }, 30);
        return () => {
          stopped = true;
          stop?.();
        };
      }
    }
    const connection = new LateConnection();
    connection.snapshot('jobA', { status: 'running', progress: 20, name: 'A' });
    connection.snapshot('jobB', { status: 'running', progress: 50, name: 'B' });
    const element = await mountProgress(connection, { 'job-id': 'jobA', cancelable: true });
    await waitFor(() => part(element, 'button'), "A's cancel button");
    await sendKeys({ press: 'Tab' });
    equal(element.shadowRoot!.activeElement, part(element, 'button'), 'Tab reaches the cancel button');
    element.jobId = 'jobB';
    await render(element);
    await waitFor(() => part(element, 'label')!.textContent === 'B' && part(element, 'button'), "B's cancel button");
    await render(element);
    ok(element.shadowRoot!.activeElement !== bar(element), 'focus did not jump to the bar: job B has not ended');
    equal(element.shadowRoot!.activeElement, part(element, 'button'), "focus is back on the (new job's) cancel button");
    connection.snapshot('jobB', { status: 'completed', progress: 100 });
    await waitFor(() => !part(element, 'button'), 'B to end');
    await render(element);
    equal(element.shadowRoot!.activeElement, bar(element), 'once B really ended, focus moves to the bar');
  });

  it('shows a refused cancel accessibly and lets the user retry', async () => {
    const connection = new FakeConnection();
    connection.cancelFailure = 'The job already ended';
    connection.snapshot('job1', { status: 'running', progress: 20 });
    const element = await mountProgress(connection, { cancelable: true });
    part(element, 'button')!.click();
    await waitFor(() => part(element, 'error'), 'the error');
    equal(part(element, 'error')!.textContent, 'The job already ended');
    equal(part(element, 'error')!.getAttribute('role'), 'alert');
    equal(part(element, 'button')!.textContent!.trim(), 'Cancel');
  });

  it('reflows in a narrow container: long unbroken words wrap instead of widening the element (WCAG 1.4.10)', async () => {
    const connection = new FakeConnection();
    const path = '/srv/app/storage/exports/2025-q3/consolidated_ledger_for_every_single_region.csv';
    connection.snapshot('job1', {
      name: 'reports/quarterly-consolidated-ledger-export-for-all-regions',
      status: 'failed',
      progress: 40,
      text: `Reading${path}`,
      error: `ENOENT:${path}`,
      startedAt: Date.now() - 9_000,
      endedAt: Date.now(),
    });
    const container = document.createElement('div');
    container.style.width = '300px';
    document.body.append(container);
    const element = document.createElement('backjob-progress');
    element.jobId = 'job1';
    element.connection = connection;
    container.append(element);
    await render(element);
    const box = element.getBoundingClientRect();
    ok(box.width <= 300.5, `the element stays within its 300px container (is ${box.width}px)`);
    for (const name of ['base', 'label', 'status', 'text', 'time', 'error']) {
      const node = part(element, name)!;
      const rect = node.getBoundingClientRect();
      ok(rect.right <= box.right + 0.5, `${name} ends inside the element (right ${rect.right} > ${box.right})`);
      ok(node.scrollWidth <= node.clientWidth + 1, `${name} does not overflow itself (${node.scrollWidth} > ${node.clientWidth})`);
    }
  });

  it("ignores how a cancel ended once it shows another job: no alert about job A on job B, B's cancel untouched", async () => {
    /** A connection whose cancels stay pending until the test settles them. */
    class PendingCancels extends FakeConnection {
      readonly pending: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
      override cancel(jobId: string, token?: string): Promise<void> {
        this.cancels.push({ jobId, token });
        return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
      }
    }
    const connection = new PendingCancels();
    connection.snapshot('jobA', { status: 'running', progress: 20, name: 'A' });
    connection.snapshot('jobB', { status: 'running', progress: 50, name: 'B' });
    const element = await mountProgress(connection, { 'job-id': 'jobA', cancelable: true });
    part(element, 'button')!.click();
    await render(element);
    equal(part(element, 'button')!.textContent!.trim(), 'Canceling…');
    element.jobId = 'jobB';
    await render(element);
    equal(part(element, 'button')!.textContent!.trim(), 'Cancel', "B's own cancel button");
    part(element, 'button')!.click(); // B's cancel, under way
    await render(element);
    equal(connection.cancels.map((c) => c.jobId), ['jobA', 'jobB']);
    connection.pending[0].reject(new Error('Job A could not be canceled'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await render(element);
    equal(part(element, 'error'), null, "A's failure is not shown on B");
    equal(part(element, 'button')!.textContent!.trim(), 'Canceling…', "B's cancel is still under way");
    connection.pending[1].reject(new Error('Job B could not be canceled'));
    await waitFor(() => part(element, 'error'), "B's own failure");
    equal(part(element, 'error')!.textContent, 'Job B could not be canceled');
    equal(part(element, 'error')!.getAttribute('role'), 'alert');
    equal(part(element, 'button')!.textContent!.trim(), 'Cancel');
  });

  it('keeps the bar visible in forced colours (Windows High Contrast)', async () => {
    await emulateMedia({ forcedColors: 'active' });
    try {
      ok(matchMedia('(forced-colors: active)').matches, 'forced colours are emulated');
      const connection = new FakeConnection();
      connection.snapshot('job1', { status: 'running', progress: 60 });
      const element = await mountProgress(connection);
      const track = getComputedStyle(bar(element));
      const fill = getComputedStyle(part(element, 'indicator')!);
      ok(track.borderTopStyle === 'solid' && parseFloat(track.borderTopWidth) >= 1, 'the track has a border to show its extent');
      // What the system's Highlight colour is here, to compare with.
      const probe = document.createElement('div');
      probe.style.cssText = 'forced-color-adjust: none; background: Highlight';
      document.body.append(probe);
      const highlight = getComputedStyle(probe).backgroundColor;
      equal(fill.backgroundColor, highlight, 'the fill is painted in Highlight');
      ok(fill.backgroundColor !== track.backgroundColor, `fill and track differ (${fill.backgroundColor} / ${track.backgroundColor})`);
      for (const status of ['completed', 'failed'] as const) {
        connection.snapshot('job1', { status, progress: 100 });
        await render(element);
        equal(getComputedStyle(part(element, 'indicator')!).backgroundColor, highlight, `the fill stays visible once ${status}`);
      }
    } finally {
      await emulateMedia({ forcedColors: 'none' });
    }
  });

  it('re-watches when its job changes', async () => {
    const connection = new FakeConnection();
    connection.snapshot('job1', { status: 'completed' });
    connection.snapshot('job2', { status: 'running', progress: 70 });
    const element = await mountProgress(connection);
    equal(element.status, 'completed');
    element.jobId = 'job2';
    await render(element);
    equal(connection.watchers('job1'), 0);
    equal(connection.watchers('job2'), 1);
    equal(element.status, 'running');
    equal(bar(element).getAttribute('aria-valuenow'), '70');
  });
});
