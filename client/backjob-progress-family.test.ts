// <backjob-progress> on a job made of parts: its steps ("Step 2 of 3:
// Transform", the list), its children or a batch's members (the summary, the
// list, opening one), what it says about them, and how it keeps up with a
// batch of a thousand. Snapshots come from the protocol's own fold
// (FakeConnection.apply), as the real connection makes them.
import { emulateMedia, sendKeys } from '@web/test-runner-commands';
import type { ChildSnapshot, JobEventData, JobStatus } from '../shared/protocol.js';
import './backjob-progress.js';
import type { BackjobProgress } from './backjob-progress.js';
import type { BackjobOpenDetail } from './events.js';
import { FakeConnection } from './testing/fake-connection.js';
import { cleanup, equal, expectAccessible, mount, nextFrame, ok, waitFor } from './testing/helpers.js';
import { hearAnnouncer, peak } from './testing/speech.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (element: Element | null | undefined) => element?.textContent?.replace(/[ \t\n\r]+/g, ' ').trim();
const part = (element: Element, name: string) => element.shadowRoot!.querySelector<HTMLElement>(`[part~="${name}"]`);
const parts = (element: Element, name: string) => [...element.shadowRoot!.querySelectorAll<HTMLElement>(`[part~="${name}"]`)];

const steps: JobEventData = { type: 'job:steps', steps: [{ name: 'download', title: 'Download' }, { name: 'transform', title: 'Transform', weight: 2 }, { name: 'upload', title: 'Upload' }] };

function child(id: string, status: JobStatus = 'waiting', changes: Partial<ChildSnapshot> = {}): JobEventData {
  return { type: 'job:child', child: { id, name: 'export-part', title: `Part ${id}`, weight: 1, status, progress: status === 'completed' ? 100 : 0, ...changes } };
}

async function progressOf(connection: FakeConnection, attributes: Record<string, string | boolean> = {}, properties: Partial<BackjobProgress> = {}) {
  return mount('backjob-progress', { 'job-id': 'job1', ...attributes }, { connection, ...properties });
}

async function settle(element: BackjobProgress) {
  await element.updateComplete;
  return element;
}

describe('<backjob-progress> with steps and children', () => {
  afterEach(async () => {
    cleanup();
    document.documentElement.style.removeProperty('color-scheme');
    await emulateMedia({ colorScheme: 'light' });
  });

  for (const scheme of ['light', 'dark'] as const) {
    it(`names the current step, lists the steps as an ordered list with each state in words, and passes axe (${scheme})`, async () => {
      document.documentElement.style.setProperty('color-scheme', 'light dark');
      await emulateMedia({ colorScheme: scheme });
      const connection = new FakeConnection();
      connection.apply('job1', { type: 'job:start', attempt: 1 }, steps, { type: 'job:step', name: 'transform', progress: 40 });
      const element = await progressOf(connection, { 'show-steps': true, label: 'Export' });
      equal(text(part(element, 'step-summary')), 'Step 2 of 3: Transform');
      ok(part(element, 'track')!.getAttribute('aria-describedby')!.split(' ').includes('step'), 'the bar is described by the current step');
      // Download done (1), Transform at 40 % of weight 2: (1 + 0.8) / 4 = 45 %, from the fold, not from the element.
      equal(part(element, 'track')!.getAttribute('aria-valuenow'), '45');
      const list = part(element, 'steps')!;
      equal(list.localName, 'ol', 'an ordered list: the list and listitem roles come with it');
      equal(list.getAttribute('aria-label'), 'Steps of Export');
      const items = parts(element, 'step');
      equal(items.map((li) => li.localName), ['li', 'li', 'li']);
      equal(items.map((li) => text(li)), ['Download Completed', 'Transform 40%', 'Upload Waiting'], 'each state in words, the running one by its percentage');
      equal(items.map((li) => li.getAttribute('aria-current')), [null, 'step', null], 'the running step is the current one');
      ok(items[1]!.matches('[part~="step-running"]') && items[0]!.matches('[part~="step-completed"]'), 'a part per state, for ::part() styling');
      const track = items[1]!.querySelector<HTMLElement>('[part~="step-track"]')!;
      equal(track.getAttribute('aria-hidden'), 'true', 'the small bar is for the eye: its percentage is read');
      await nextFrame();
      const fill = track.querySelector<HTMLElement>('[part~="step-indicator"]')!;
      ok(Math.abs(fill.getBoundingClientRect().width - track.clientWidth * 0.4) < 1, `the small bar at 40 % (${fill.getBoundingClientRect().width} of ${track.clientWidth})`);
      ok(!items[0]!.querySelector('[part~="step-track"]'), 'no bar for a step not running');
      await expectAccessible(element);
    });
  }

  it('lists no steps without show-steps, still names the current one, and follows the steps as they move', async () => {
    const connection = new FakeConnection();
    connection.apply('job1', { type: 'job:start', attempt: 1 }, steps);
    const element = await progressOf(connection);
    equal(part(element, 'steps'), null);
    equal(part(element, 'step-summary'), null, 'nothing begun yet: no step to name');
    connection.apply('job1', { type: 'job:step', name: 'download' });
    await settle(element);
    equal(text(part(element, 'step-summary')), 'Step 1 of 3: Download');
    connection.apply('job1', { type: 'job:step', name: 'download', state: 'completed' });
    await settle(element);
    equal(text(part(element, 'step-summary')), 'Step 2 of 3: Transform', 'between two steps, the next one');
    connection.apply('job1', { type: 'job:step', name: 'upload' }, { type: 'job:completed' });
    await settle(element);
    equal(part(element, 'step-summary'), null, 'done is told by the state');
  });

  it('tells a skipped and a failed step in words, and which step a failed job failed at', async () => {
    const connection = new FakeConnection();
    connection.apply('job1', { type: 'job:start', attempt: 1 }, steps, { type: 'job:step', name: 'download', state: 'skipped' }, { type: 'job:step', name: 'transform', state: 'failed' });
    connection.apply('job1', { type: 'job:failed', reason: 'Bad row 12' });
    const element = await progressOf(connection, { 'show-steps': true });
    equal(parts(element, 'step').map((li) => text(li)), ['Download Skipped', 'Transform Failed', 'Upload Waiting']);
    ok(parts(element, 'step')[0]!.querySelector('svg[aria-hidden="true"]'), 'an icon beside the words, hidden');
    equal(text(part(element, 'step-summary')), 'Failed at step 2 of 3: Transform');
    await expectAccessible(element);
  });

  it("summarizes a parent's children and lists them with title, state, progress and why one failed", async () => {
    const connection = new FakeConnection();
    connection.apply(
      'job1',
      { type: 'job:start', attempt: 1 },
      child('a', 'completed'),
      child('b', 'running', { progress: 30, text: 'Row 30 of 100' }),
      child('c', 'failed', { errorCode: 'BACKJOB_ERR_TIMEOUT' }),
      child('d'),
    );
    const element = await progressOf(connection, { 'show-children': true, label: 'Export' });
    equal(text(part(element, 'children-summary')), '2 of 4 done · 1 failed');
    equal(part(element, 'track')!.getAttribute('aria-valuenow'), '58', 'the parent shows the aggregate: (100 + 30 + 100 + 0) / 4');
    const list = part(element, 'children')!;
    equal(list.localName, 'ol');
    equal(list.getAttribute('aria-label'), 'Jobs started by Export');
    const items = parts(element, 'child');
    equal(items.map((li) => li.dataset.jobId), ['a', 'b', 'c', 'd'], 'in the order they were spawned');
    equal(text(items[0]), 'Part a Completed');
    equal(text(items[1]), 'Part b 30% Row 30 of 100');
    equal(text(items[2]), 'Part c Failed The job took too long and was stopped', "a known code's reason, in words");
    ok(items[2]!.matches('[part~="child-failed"]'));
    equal(part(element, 'child-link'), null, 'no link without href, no button without openable');
    await expectAccessible(element);
    // A batch names its list as one.
    connection.snapshot('job1', { batch: true });
    await settle(element);
    equal(part(element, 'children')!.getAttribute('aria-label'), 'Jobs in Export');
  });

  it('links each child through the href template, and fires a cancelable backjob-open first', async () => {
    const connection = new FakeConnection();
    connection.apply('job1', { type: 'job:start', attempt: 1 }, child('a'), child('b/1'));
    const element = await progressOf(connection, { 'show-children': true, href: '#watch-{id}-of-{parent}', token: 'parent-token' });
    const links = parts(element, 'child-link') as HTMLAnchorElement[];
    equal(links.map((a) => a.getAttribute('href')), ['#watch-a-of-job1', '#watch-b%2F1-of-job1'], 'ids encoded into the template');
    const opened: BackjobOpenDetail[] = [];
    const listener = (event: CustomEvent<BackjobOpenDetail>) => {
      ok(event.bubbles && event.composed && event.cancelable, 'bubbling, composed, cancelable');
      opened.push(event.detail);
      if (event.detail.jobId === 'b/1') event.preventDefault(); // a page that routes itself
    };
    document.addEventListener('backjob-open', listener);
    try {
      location.hash = '';
      links[0]!.click();
      equal(opened[0]?.jobId, 'a');
      equal(opened[0]?.parentId, 'job1');
      equal(opened[0]?.token, 'parent-token', "the parent's token, which lets the page watch its children");
      equal(opened[0]?.child.title, 'Part a');
      await waitFor(() => location.hash === '#watch-a-of-job1', 'the link followed');
      links[1]!.click();
      equal(opened[1]?.jobId, 'b/1');
      await sleep(50);
      equal(location.hash, '#watch-a-of-job1', 'a prevented open is not followed');
      // From the keyboard: a link, in the tab order.
      links[0]!.focus();
      await sendKeys({ press: 'Enter' });
      await waitFor(() => opened.length === 3, 'Enter opens it');
    } finally {
      document.removeEventListener('backjob-open', listener);
      location.hash = '';
    }
    await expectAccessible(element);
  });

  it('with openable and no href, makes each title a button that fires backjob-open from the keyboard', async () => {
    const connection = new FakeConnection();
    connection.apply('job1', { type: 'job:start', attempt: 1 }, child('a'), child('b', 'running', { progress: 10 }));
    const element = await progressOf(connection, { 'show-children': true, openable: true });
    const buttons = parts(element, 'child-link');
    equal(buttons.map((b) => b.localName), ['button', 'button']);
    const opened: string[] = [];
    element.addEventListener('backjob-open', (event) => opened.push(event.detail.jobId));
    buttons[1]!.focus();
    await sendKeys({ press: 'Enter' });
    buttons[0]!.focus();
    await sendKeys({ press: 'Space' });
    await waitFor(() => opened.length === 2, 'both opened');
    equal(opened, ['b', 'a']);
    await expectAccessible(element);
  });

  it('shows the first children of a long list and a "Show all" that the keyboard operates, focus staying on it', async () => {
    const connection = new FakeConnection();
    connection.apply('job1', { type: 'job:start', attempt: 1 }, ...Array.from({ length: 1000 }, (_, i) => child(`c${i}`)));
    const element = await progressOf(connection, { 'show-children': true });
    equal(parts(element, 'child').length, 10, 'ten by default');
    const toggle = part(element, 'children-toggle')!;
    equal(text(toggle), 'Show all 1,000', 'the count formatted in the page language');
    equal(toggle.getAttribute('aria-expanded'), 'false');
    equal(toggle.getAttribute('aria-controls'), 'children');
    toggle.focus();
    await sendKeys({ press: 'Enter' });
    await settle(element);
    equal(parts(element, 'child').length, 1000);
    equal(text(toggle), 'Show fewer');
    equal(toggle.getAttribute('aria-expanded'), 'true');
    equal(element.shadowRoot!.activeElement, toggle, 'focus stays on the control');
    await sendKeys({ press: 'Space' });
    await settle(element);
    equal(parts(element, 'child').length, 10);
    element.childrenLimit = 3;
    await settle(element);
    equal(parts(element, 'child').length, 3, 'children-limit sets how many');
    connection.apply('job1', child('c0', 'failed'));
    await settle(element);
    equal(text(part(element, 'children-summary')), '1 of 1,000 done · 1 failed');
    element.jobId = 'job2';
    await settle(element);
    equal(part(element, 'children'), null, 'another job: nothing of the last one');
  });

  it('keeps the children list short when it fits: no "Show all" for ten', async () => {
    const connection = new FakeConnection();
    connection.apply('job1', ...Array.from({ length: 10 }, (_, i) => child(`c${i}`)));
    const element = await progressOf(connection, { 'show-children': true });
    equal(parts(element, 'child').length, 10);
    equal(part(element, 'children-toggle'), null);
  });

  it('renders a thousand children updating in time proportionate to ten (keyed rows, only changed ones rebuilt)', async () => {
    /** Ms to render `count` children, then `rounds` updates of one child each, rendered one by one. */
    async function measure(count: number, rounds: number): Promise<{ first: number; updates: number }> {
      const connection = new FakeConnection();
      connection.apply('job1', { type: 'job:start', attempt: 1 }, ...Array.from({ length: count }, (_, i) => child(`c${i}`, 'running', { progress: 1 })));
      const started = performance.now();
      const element = await progressOf(connection, { 'show-children': true, 'children-limit': String(count) });
      const first = performance.now() - started;
      equal(parts(element, 'child').length, count);
      const row = parts(element, 'child')[0]!;
      const t0 = performance.now();
      for (let round = 0; round < rounds; round++) {
        connection.apply('job1', child(`c${round % count}`, 'running', { progress: 2 + (round % 97) }));
        await element.updateComplete;
      }
      const updates = performance.now() - t0;
      ok(parts(element, 'child')[0] === row, 'rows are kept, not rebuilt');
      element.remove();
      return { first, updates };
    }
    await measure(10, 20); // warm up
    const small = await measure(10, 200);
    const large = await measure(1000, 200);
    // The fold itself copies the children (O(n) per event): an update of 1,000 costs more than of 10, but
    // rows not changed are not rebuilt, so far less than 100× (re-rendering every row would be).
    const ratio = large.updates / Math.max(small.updates, 1);
    ok(ratio < 30, `200 updates of a child among 1,000 took ${large.updates.toFixed(0)} ms, among 10 ${small.updates.toFixed(0)} ms: ${ratio.toFixed(1)}×`);
    ok(large.first / Math.max(small.first, 1) < 300, `a first render of 1,000 rows is proportionate: ${large.first.toFixed(0)} ms vs ${small.first.toFixed(0)} ms`);
  });

  describe('speech', () => {
    let speech: ReturnType<typeof hearAnnouncer>;
    const said = () => speech.heard.map((h) => h.text);
    // The page's announcer with its rules as in production, on a shorter clock.
    beforeEach(() => {
      speech = hearAnnouncer(800);
    });
    afterEach(() => speech.stop());

    it('says when a step is done, and when one failed while the job goes on', async () => {
      const connection = new FakeConnection();
      connection.apply('job1', { type: 'job:start', attempt: 1 }, steps, { type: 'job:step', name: 'download' });
      const element = await progressOf(connection, { label: 'Export' });
      connection.apply('job1', { type: 'job:step', name: 'transform' }); // completes Download
      await settle(element);
      await waitFor(() => said().length === 1, 'the step done');
      // With the milestone it reached (Download's share): one announcement, the step first.
      equal(said(), ['Download done. Export: 25%']);
      connection.apply('job1', { type: 'job:step', name: 'upload', state: 'failed' });
      await settle(element);
      await waitFor(() => said().length === 2, 'the step failed');
      equal(said()[1], 'Step Upload failed. Export: 50%', 'a failed step is done with, for the progress');
    });

    it('says nothing of steps that were done before it watched, and lets the end tell a step that ended with the job', async () => {
      const connection = new FakeConnection();
      connection.apply('job1', { type: 'job:start', attempt: 1 }, steps, { type: 'job:step', name: 'transform' });
      const element = await progressOf(connection, { label: 'Export' });
      connection.apply('job1', { type: 'job:step', name: 'upload', state: 'completed' }, { type: 'job:completed' });
      await settle(element);
      await waitFor(() => said().length === 1, 'the end');
      await sleep(1_000);
      equal(said(), ['Export: completed']);
    });

    it('says a child that failed by its name, several by their count, and never floods while a thousand progress', async () => {
      const connection = new FakeConnection();
      connection.apply('job1', { type: 'job:start', attempt: 1 }, ...Array.from({ length: 1000 }, (_, i) => child(`c${i}`, 'running')));
      const element = await progressOf(connection, { label: 'Batch' });
      connection.apply('job1', child('c7', 'failed'));
      await settle(element);
      await waitFor(() => said().length === 1, 'the failure');
      equal(said(), ['Part c7 failed']);
      // Two seconds of a busy batch: every member moves, and fifty fail together.
      const start = performance.now();
      let round = 0;
      while (performance.now() - start < 2_000) {
        const events: JobEventData[] = [];
        for (let i = round % 10; i < 1000; i += 10) {
          if (i === 7) continue; // failed already: an end is final
          events.push(i % 20 === 0 && round > 0 ? child(`c${i}`, 'failed') : child(`c${i}`, 'running', { progress: Math.min(99, round * 5) }));
        }
        connection.apply('job1', ...events);
        round++;
        await sleep(20);
      }
      await sleep(1_000);
      ok(peak(speech.heard) <= 2, `at most two announcements in any second (${peak(speech.heard)})`);
      ok(said().length <= 6, `a few announcements, not one per member: ${JSON.stringify(said())}`);
      const failed = element.snapshot!.children!.filter((c) => c.status === 'failed').length;
      ok(failed > 40, `many failed (${failed})`);
      ok(said().some((words) => /\d+ jobs of Batch failed/.test(words)), `the failures counted: ${JSON.stringify(said())}`);
      // Each failure is in exactly one announcement: by name when alone, else in a count.
      const told = said().reduce(
        (sum, words) => sum + [...words.matchAll(/(\d+) jobs of Batch failed|Part c\d+ failed/g)].reduce((n, m) => n + (m[1] ? Number(m[1]) : 1), 0),
        0,
      );
      equal(told, failed, 'every failure counted once, none twice');
    });
  });
});
