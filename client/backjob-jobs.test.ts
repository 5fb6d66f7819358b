// <backjob-jobs>: the table and its states, live changes, the filter,
// pages, cancel, languages and axe, over a connection the test drives; then
// against the real server, where another user's jobs never appear.
import { setViewport } from '@web/test-runner-commands';
import './index.js';
import { initialSnapshot, type JobSnapshot, type JobStatus } from '../shared/protocol.js';
import type { BackjobJobs } from './backjob-jobs.js';
import { FakeConnection } from './testing/fake-connection.js';
import { cleanup, equal, expectAccessible, mount, ok, waitFor } from './testing/helpers.js';
import { hearAnnouncer } from './testing/speech.js';

const rows = (list: BackjobJobs) => [...list.shadowRoot!.querySelectorAll<HTMLTableRowElement>('tbody tr')];
/** What each cell shows (words only for screen readers left out). */
const cells = (row: HTMLTableRowElement) =>
  [...row.children].map((cell) => {
    const copy = cell.cloneNode(true) as Element;
    for (const hidden of copy.querySelectorAll('.visually-hidden')) hidden.remove();
    return copy.textContent!.replace(/\s+/g, ' ').trim();
  });
const part = (list: BackjobJobs, name: string) => list.shadowRoot!.querySelector<HTMLElement>(`[part~="${name}"]`);

let clock = Date.now() - 3_600_000;
function job(status: JobStatus, changes: Partial<JobSnapshot> = {}): JobSnapshot {
  clock += 1_000;
  const base = initialSnapshot(`job-${clock}`, 'reports/quarterly', clock);
  const started = status === 'waiting' ? {} : { startedAt: clock + 100 };
  const ended = status === 'completed' || status === 'failed' || status === 'canceled' ? { endedAt: clock + 65_100 } : {};
  return { ...base, status, progress: status === 'completed' ? 100 : 40, seq: 3, ...started, ...ended, ...changes };
}

async function listWith(connection: FakeConnection, attributes: Record<string, string | boolean> = {}): Promise<BackjobJobs> {
  const element = document.createElement('backjob-jobs');
  element.connection = connection;
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value === true ? '' : String(value));
  document.body.append(element);
  await waitFor(() => connection.pageRequests.length > 0, 'the first page asked for');
  await new Promise((resolve) => setTimeout(resolve));
  await element.updateComplete;
  return element;
}

describe('<backjob-jobs>', () => {
  afterEach(() => {
    cleanup();
    document.documentElement.lang = 'en';
  });

  it("tells under a job's name where a job made of parts is: its step, or how many of its children are done", async () => {
    const connection = new FakeConnection();
    const member = (id: string, status: JobStatus) => ({ id, name: 'export', weight: 1, status, progress: 0 });
    connection.listed = [
      job('running', { title: 'Pipeline', steps: [{ name: 'a', title: 'Download', weight: 1, state: 'completed', progress: null }, { name: 'b', title: 'Transform', weight: 1, state: 'running', progress: 10 }] }),
      job('running', { title: 'Export', batch: true, children: [member('m1', 'completed'), member('m2', 'failed'), member('m3', 'running')] }),
      job('running', { title: 'Plain' }),
    ].reverse();
    const list = await listWith(connection);
    const [plain, batch, pipeline] = rows(list);
    equal(pipeline!.querySelector('[part="family"]')?.textContent, 'Step 2 of 2: Transform');
    equal(batch!.querySelector('[part="family"]')?.textContent?.replace(/\s+/g, ' ').trim(), '2 of 3 done · 1 failed');
    equal(plain!.querySelector('[part="family"]'), null, 'nothing for a job of one piece');
    equal(pipeline!.querySelector('th')!.textContent!.replace(/\s+/g, ' ').trim(), 'Pipeline Step 2 of 2: Transform', 'read with the row header');
    await expectAccessible(list);
  });

  it('lists the jobs as a named table with column headers, each state in words beside its icon, and passes axe', async () => {
    const connection = new FakeConnection();
    connection.listed = [job('running', { title: 'Quarterly report', progress: 37 }), job('completed'), job('failed', { error: 'disk full' }), job('waiting')].reverse();
    const list = await listWith(connection);
    const table = part(list, 'table')!;
    equal(table.getAttribute('aria-labelledby'), 'title');
    equal(part(list, 'title')!.textContent, 'Your jobs');
    equal([...table.querySelectorAll('thead th')].map((th) => th.textContent!.trim()), ['Job', 'Status', 'Progress', 'Started', 'Duration', 'Actions']);
    const [waiting, failed, completed, running] = rows(list).map(cells);
    equal(running![0], 'Quarterly report');
    equal(running![1], 'Running');
    equal(running![2], '37%');
    equal(completed![1], 'Completed');
    equal(completed![2], '100%');
    equal(completed![4], '01:05');
    equal(failed![2], '—');
    equal(waiting![3], 'Not yet');
    equal(waiting![0], 'Reports quarterly', 'a human name, not the internal one');
    ok(rows(list).every((row) => row.querySelector('[part~="status"] svg[aria-hidden="true"]')), 'an icon beside every state');
    equal(rows(list).filter((row) => row.querySelector('[part="cancel-button"]')).length, 2, 'cancel only where the job still waits or runs');
    await expectAccessible(list);
    list.setAttribute('theme', 'dark');
    await list.updateComplete;
    await expectAccessible(list);
  });

  it("sets each state's word on the row's baseline, beside its icon", async () => {
    const connection = new FakeConnection();
    connection.listed = [job('running'), job('completed')];
    const list = await listWith(connection);
    for (const row of rows(list)) {
      const name = row.querySelector('[part~="name"]')!.getBoundingClientRect();
      const word = row.querySelector('[part~="status"] > :not(svg)') ?? row.querySelector('[part~="status"]')!;
      const range = document.createRange();
      range.selectNodeContents(word);
      const bottom = [...range.getClientRects()].at(-1)!.bottom;
      ok(Math.abs(bottom - name.bottom) <= 1, `the status word ends ${(name.bottom - bottom).toFixed(1)} px above the name`);
    }
  });

  it('says in words what a cell shows as "—" (a screen reader would read "em dash")', async () => {
    const connection = new FakeConnection();
    connection.listed = [job('failed'), job('waiting'), job('running', { progress: null })];
    const list = await listWith(connection);
    /** The text a screen reader reads in a cell: everything not hidden from it. */
    const spoken = (cell: Element) => {
      const copy = cell.cloneNode(true) as Element;
      for (const hidden of copy.querySelectorAll('[aria-hidden="true"]')) hidden.remove();
      return copy.textContent!.replace(/\s+/g, ' ').trim();
    };
    const [running, waiting, failed] = rows(list);
    equal(cells(running!)[2], '—', 'shown');
    equal(spoken(running!.children[2]!), 'Not available', 'unknown progress');
    equal(spoken(failed!.children[2]!), 'Not available', "a failed job's progress");
    equal(spoken(waiting!.children[4]!), 'Not yet', "an unstarted job's duration");
    await expectAccessible(list);
  });

  it('shows what the server pushes: a new job on top, its progress, its end; no polling', async () => {
    const connection = new FakeConnection();
    connection.listed = [job('completed')];
    const list = await listWith(connection);
    equal(rows(list).length, 1);
    const fresh = job('waiting', { title: 'Fresh export' });
    connection.pushList(fresh);
    await list.updateComplete;
    equal(cells(rows(list)[0]!)[0], 'Fresh export');
    connection.pushList({ ...fresh, status: 'running', startedAt: Date.now(), progress: 64, seq: 5 });
    await list.updateComplete;
    equal(cells(rows(list)[0]!).slice(1, 3), ['Running', '64%']);
    connection.pushList({ ...fresh, status: 'completed', progress: 100, endedAt: Date.now(), seq: 9 });
    await list.updateComplete;
    equal(cells(rows(list)[0]!)[1], 'Completed');
    equal(connection.pageRequests.length, 1, 'one page read; everything after came pushed');
  });

  it('filters by status: the page asked for, and a job that leaves the filter leaves the table', async () => {
    const connection = new FakeConnection();
    const running = job('running');
    connection.listed = [running, job('completed'), job('failed')];
    const list = await listWith(connection, { status: 'running' });
    equal(connection.pageRequests[0]!.status, ['running']);
    equal(rows(list).length, 1);
    connection.pushList({ ...running, status: 'completed', endedAt: Date.now(), seq: 9 });
    await list.updateComplete;
    equal(rows(list).length, 0);
    equal(part(list, 'empty')!.textContent!.trim(), 'No jobs');
    const select = part(list, 'filter') as HTMLSelectElement;
    select.value = 'failed';
    select.dispatchEvent(new Event('change'));
    await waitFor(() => connection.pageRequests.length === 2, 'the filtered page');
    equal(connection.pageRequests[1]!.status, ['failed']);
    await waitFor(() => rows(list).length === 1, 'the failed job');
  });

  it('pages: "Show more" reads the next page after the last one shown, until there is none', async () => {
    const connection = new FakeConnection();
    connection.listed = Array.from({ length: 25 }, () => job('completed')).reverse();
    const list = await listWith(connection, { 'page-size': '10' });
    equal(rows(list).length, 10);
    part(list, 'more-button')!.click();
    await waitFor(() => rows(list).length === 20, '20 rows');
    ok(connection.pageRequests[1]!.before, 'the second page starts after the first');
    part(list, 'more-button')!.click();
    await waitFor(() => rows(list).length === 25, '25 rows');
    await list.updateComplete;
    equal(part(list, 'more-button'), null);
    equal(new Set(rows(list).map((row) => row.querySelector('[part~="name"]')!.textContent)).size, 1, 'all the same name');
    equal(list.jobs.map((j) => j.id), connection.listed.map((j) => j.id), 'every job once, newest first');
  });

  it('reads pages of the default size when page-size is not a number (a typo in plain HTML)', async () => {
    const connection = new FakeConnection();
    connection.listed = Array.from({ length: 12 }, () => job('completed')).reverse();
    const list = await listWith(connection, { 'page-size': 'ten' });
    equal(connection.pageRequests[0]!.limit, 10);
    equal(rows(list).length, 10);
    part(list, 'more-button')!.click();
    await waitFor(() => connection.pageRequests.length === 2, 'the next page');
    equal(connection.pageRequests[1]!.limit, 10);
  });

  it('cancels from a row, with the job named in the button, and links a job when given an href', async () => {
    const connection = new FakeConnection();
    const running = job('running', { title: 'Big import' });
    connection.listed = [running];
    const list = await listWith(connection, { href: '/jobs/{id}' });
    equal(part(list, 'name')!.getAttribute('href'), `/jobs/${running.id}`);
    const cancel = part(list, 'cancel-button')!;
    equal(cancel.getAttribute('aria-label'), 'Cancel Big import');
    cancel.click();
    await waitFor(() => connection.cancels.length === 1, 'the cancel');
    equal(connection.cancels[0]!.jobId, running.id);
  });

  it('says why the list could not be read, and does not claim there are no jobs', async () => {
    const connection = new FakeConnection();
    connection.listFailure = 'BACKJOB_ERR_INTERNAL';
    const list = await listWith(connection);
    await waitFor(() => part(list, 'error'), 'the error');
    equal(part(list, 'empty'), null, '"No jobs" beside the error');
    await expectAccessible(list);
  });

  it("keeps focus when the focused cancel button goes because the job ended: on the job's row, or the title when the row left", async () => {
    const connection = new FakeConnection();
    const [first, second] = [job('running'), job('running')];
    connection.listed = [second, first];
    const list = await listWith(connection, { status: 'running' });
    const cancelOf = (j: JobSnapshot) => list.shadowRoot!.querySelector<HTMLElement>(`tr[data-job-id="${j.id}"] [part~="cancel-button"]`)!;
    cancelOf(first).focus();
    connection.pushList({ ...first, status: 'running', progress: 50, seq: 8 });
    await list.updateComplete;
    equal(list.shadowRoot!.activeElement, cancelOf(first), 'a progress change leaves focus alone');
    list.status = undefined;
    await waitFor(() => connection.pageRequests.length === 2, 'every status');
    await list.updateComplete;
    cancelOf(first).focus();
    connection.pushList({ ...first, status: 'canceled', endedAt: Date.now(), seq: 9 });
    await list.updateComplete;
    equal(list.shadowRoot!.activeElement, list.shadowRoot!.querySelector(`tr[data-job-id="${first.id}"] th`), `focus went to ${document.activeElement?.tagName}`);
    list.status = 'running';
    await waitFor(() => connection.pageRequests.length === 3, 'running only');
    await list.updateComplete;
    cancelOf(second).focus();
    connection.pushList({ ...second, status: 'completed', endedAt: Date.now(), seq: 9 });
    await list.updateComplete;
    equal(list.shadowRoot!.activeElement, part(list, 'title'), `focus went to ${document.activeElement?.tagName}`);
    await expectAccessible(list);
  });

  it('keeps focus when "Show more" goes with the last page: on the first row it brought', async () => {
    const connection = new FakeConnection();
    connection.listed = Array.from({ length: 12 }, () => job('completed')).reverse();
    const list = await listWith(connection, { 'page-size': '10' });
    const more = part(list, 'more-button')!;
    more.focus();
    more.click();
    await waitFor(() => rows(list).length === 12, '12 rows');
    await list.updateComplete;
    equal(list.shadowRoot!.activeElement, rows(list)[10]!.querySelector('th'), `focus went to ${document.activeElement?.tagName}`);
  });

  describe('in a 320 px viewport (WCAG 1.4.10)', () => {
    before(() => setViewport({ width: 320, height: 640 }));
    after(() => setViewport({ width: 800, height: 600 }));

    it('the table scrolls inside the card: the page does not scroll sideways', async () => {
      const connection = new FakeConnection();
      connection.listed = [job('running'), job('completed')];
      const list = await listWith(connection);
      ok(part(list, 'table')!.getBoundingClientRect().width > 320, 'the table is wider than the viewport');
      equal(document.documentElement.scrollWidth, document.documentElement.clientWidth, 'page width');
      await expectAccessible(list);
    });

    it('breaks a job name between words, not inside them', async () => {
      const connection = new FakeConnection();
      connection.listed = [job('running', { title: 'Nightly export of every customer invoice' }), job('completed', { title: 'Quarterly report' })];
      const list = await listWith(connection);
      for (const name of list.shadowRoot!.querySelectorAll('tbody [part~="name"]')) {
        const range = document.createRange();
        range.selectNodeContents(name);
        const lines = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top))).size;
        const words = name.textContent!.trim().split(/\s+/).length;
        ok(lines <= words, `"${name.textContent}" on ${lines} lines`);
      }
    });
  });

  it('tells a screen reader the connection was lost and is back, through the page\'s one announcer', async () => {
    const speech = hearAnnouncer(300);
    try {
      const connection = new FakeConnection();
      connection.listed = [job('running')];
      const list = await listWith(connection);
      connection.setState('reconnecting');
      await list.updateComplete;
      ok(list.shadowRoot!.querySelector('.note'), 'the note is shown');
      await waitFor(() => speech.heard.length === 1, 'the loss said', 2_000).catch(() => undefined);
      equal(speech.heard.map((h) => h.text), ['Connection lost, reconnecting']);
      connection.setState('open');
      await list.updateComplete;
      await waitFor(() => speech.heard.length === 2, 'the return said', 2_000).catch(() => undefined);
      equal(speech.heard.map((h) => h.text), ['Connection lost, reconnecting', 'Connection restored']);
    } finally {
      speech.stop();
    }
  });

  it('while a cancel is on its way, names the button by what it shows (WCAG 2.5.3), and passes axe', async () => {
    const connection = new FakeConnection();
    const running = job('running', { title: 'Big import' });
    connection.listed = [running];
    connection.cancel = () => new Promise<void>(() => {}); // no answer yet
    const list = await listWith(connection);
    part(list, 'cancel-button')!.click();
    await list.updateComplete;
    const button = part(list, 'cancel-button')!;
    equal(button.textContent!.trim(), 'Canceling…');
    ok(!button.hasAttribute('aria-label') || button.getAttribute('aria-label')!.includes('Canceling…'), `named "${button.getAttribute('aria-label')}"`);
    await expectAccessible(list);
  });

  it('says so when nobody is signed in', async () => {
    const connection = new FakeConnection();
    connection.listFailure = 'BACKJOB_ERR_UNAUTHORIZED';
    const list = await listWith(connection);
    await waitFor(() => part(list, 'empty'), 'the note');
    equal(part(list, 'empty')!.textContent!.trim(), 'Sign in to see your jobs');
    await expectAccessible(list);
  });

  for (const [lang, title, header, status] of [
    ['de', 'Ihre Aufträge', 'Auftrag', 'Abgeschlossen'],
    ['fr', 'Vos tâches', 'Tâche', 'Terminée'],
    ['es', 'Sus tareas', 'Tarea', 'Completada'],
  ] as const) {
    it(`speaks ${lang}: title, headers, states and dates, and passes axe`, async () => {
      document.documentElement.lang = lang;
      const connection = new FakeConnection();
      connection.listed = [job('completed')];
      const list = await listWith(connection);
      equal(part(list, 'title')!.textContent, title);
      equal(list.shadowRoot!.querySelector('thead th')!.textContent!.trim(), header);
      const statusWord = cells(rows(list)[0]!)[1]!;
      ok(statusWord.startsWith(status.slice(0, 6)), `${statusWord} in ${lang}`);
      await expectAccessible(list);
    });
  }

  it('keeps no clock ticking once removed, even when a page it asked for arrives after', async () => {
    const connection = new FakeConnection();
    connection.listed = [job('running')];
    const list = document.createElement('backjob-jobs');
    list.connection = connection;
    document.body.append(list);
    list.remove(); // its first page is still on its way
    await new Promise((resolve) => setTimeout(resolve, 50));
    const renders = () => (list as unknown as { now: number }).now;
    const before = renders();
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    equal(renders(), before, 'the removed list still re-renders every second');
  });

  it('stops listening when removed from the page', async () => {
    const connection = new FakeConnection();
    const list = await listWith(connection);
    equal(connection.lists(), 1);
    list.remove();
    equal(connection.lists(), 0);
  });
});

describe('<backjob-jobs> against the real server', function () {
  this.timeout(60_000);
  let endpoint = '';
  before(async () => {
    ({ endpoint } = await (await fetch('/test/info')).json());
  });
  afterEach(() => {
    cleanup();
    document.cookie = 'user=; max-age=0; path=/';
  });

  it("shows the user's own jobs live, and never another user's", async () => {
    // The test server knows a socket's user by `?user=` (its pages cannot set cookies on the server's own origin).
    const alice = await mount('backjob-jobs', { endpoint: `${endpoint}?user=alice-${Date.now()}` });
    const bob = await mount('backjob-jobs', { endpoint: `${endpoint}?user=bob-${Date.now()}` });
    const user = new URL(alice.endpoint!).searchParams.get('user')!;
    document.cookie = `user=${user}; path=/`;
    const started = await fetch('/backjob/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'count', params: { lines: 5, delayMs: 50, run: Math.random() } }),
    });
    equal(started.status, 202);
    const { id } = await started.json();
    await waitFor(() => alice.jobs.find((j) => j.id === id && j.status === 'completed'), "alice's job, pushed to its end");
    await new Promise((resolve) => setTimeout(resolve, 500));
    equal(bob.jobs.length, 0, "bob's list shows nothing of alice's");
    await expectAccessible(alice);
  });
});
