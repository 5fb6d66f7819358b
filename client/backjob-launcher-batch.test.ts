// <backjob-launcher batch>: what it sends, what it refuses to send, and how
// it shows the batch job it started. `POST /backjob/jobs` goes to the real
// test server (client/test-server.ts, behind the page's origin), which starts
// the batch; the live side of the first test is a Connection double, so the
// members' states can be set exactly, its snapshots folded by the protocol's
// own fold. The last test watches a batch over the real connection.
import { sendKeys } from '@web/test-runner-commands';
import type { BatchMember, JobEventData, StartReply, StartRequest } from '../shared/protocol.js';
import './backjob-launcher.js';
import type { BackjobLauncher } from './backjob-launcher.js';
import type { BackjobProgress } from './backjob-progress.js';
import { FakeConnection } from './testing/fake-connection.js';
import { cleanup, equal, expectAccessible, mount, ok, waitFor } from './testing/helpers.js';

const text = (element: Element | null | undefined) => element?.textContent?.replace(/[ \t\n\r]+/g, ' ').trim();
const shadowPart = (element: Element, name: string) => element.shadowRoot!.querySelector<HTMLElement>(`[part~="${name}"]`);
const inner = (launcher: BackjobLauncher) => launcher.shadowRoot!.querySelector('backjob-progress') as BackjobProgress;

/** Passes `POST …/jobs` on to the real server, and keeps what was sent and what it answered. */
function batchServer() {
  const original = window.fetch;
  const sent: Array<{ url: string; body: StartRequest; status: number; reply: StartReply }> = [];
  window.fetch = async (input, init) => {
    const url = String(input);
    if (!url.endsWith('/jobs') || init?.method !== 'POST') return original(input, init);
    const response = await original(input, init);
    sent.push({ url, body: JSON.parse(String(init.body)) as StartRequest, status: response.status, reply: (await response.clone().json()) as StartReply });
    return response;
  };
  return { sent, restore: () => (window.fetch = original) };
}

const run = `${Date.now()}-${Math.random()}`;
const members: BatchMember[] = [
  { name: 'count', params: { lines: 2, delayMs: 5, run } },
  { name: 'count', params: { lines: 3, delayMs: 5, run }, weight: 2 },
  { name: 'count', params: { lines: 4, delayMs: 5, run } },
];

describe('<backjob-launcher batch>', () => {
  afterEach(cleanup);

  it('sends the batch as one request, { batch, title }, to {base-path}/jobs, and shows the batch job and its members', async () => {
    const server = batchServer();
    try {
      const connection = new FakeConnection();
      const launcher = await mount(
        'backjob-launcher',
        { batch: JSON.stringify(members), label: 'Export 3 files', 'show-children': true, href: '/watch/{id}' },
        { connection },
      );
      let announced: StartRequest | undefined;
      launcher.addEventListener('backjob-start', (event) => (announced = event.detail.request));
      launcher.shadowRoot!.querySelector<HTMLElement>('[part="button"]')!.focus();
      await sendKeys({ press: 'Enter' });
      await waitFor(() => launcher.jobId, 'the batch to start');
      equal(server.sent.length, 1, 'one request for the whole batch');
      equal(server.sent[0]!.url, '/backjob/jobs');
      const expected = { batch: members, title: 'Export 3 files' };
      equal(server.sent[0]!.body, expected);
      equal(announced, expected, 'backjob-start carries it first');
      const { status, reply } = server.sent[0]!;
      equal(status, 202, 'the server started it');
      equal(reply.snapshot.batch, true);
      equal(reply.snapshot.title, 'Export 3 files');
      equal(launcher.jobId, reply.id);
      equal(launcher.token, reply.token);
      ok(launcher.running, 'running until the batch ends');
      const batch1 = reply.id;

      const events: JobEventData[] = [
        { type: 'job:start', attempt: 1 },
        ...['m1', 'm2', 'm3'].map((id, i) => ({ type: 'job:child', child: { id, name: 'export', title: `File ${i + 1}`, weight: i === 1 ? 2 : 1, status: 'waiting', progress: 0 } }) as const),
      ];
      connection.snapshot(batch1, { name: 'batch', batch: true }); // what the server's first snapshot says of it
      connection.apply(batch1, ...events);
      connection.apply(batch1, { type: 'job:child', child: { id: 'm1', name: 'export', title: 'File 1', weight: 1, status: 'completed', progress: 100 } });
      const progress = inner(launcher);
      await waitFor(() => shadowPart(progress, 'children'), 'the members listed');
      equal(progress.token, reply.token, 'watched with the batch token');
      equal(text(shadowPart(progress, 'children-summary')), '1 of 3 done');
      equal(shadowPart(progress, 'track')!.getAttribute('aria-valuenow'), '25', "the members' weighted progress");
      equal(shadowPart(progress, 'children')!.getAttribute('aria-label'), 'Jobs in Export 3 files');
      equal([...progress.shadowRoot!.querySelectorAll('[part~="child-link"]')].map((a) => a.getAttribute('href')), ['/watch/m1', '/watch/m2', '/watch/m3']);
      await expectAccessible(launcher);

      // Styled from outside: the progress view's family parts are forwarded.
      const style = document.createElement('style');
      style.textContent = 'backjob-launcher::part(child-completed) { outline: 3px solid rgb(1, 2, 3); }';
      document.head.append(style);
      try {
        equal(getComputedStyle(progress.shadowRoot!.querySelector('[part~="child-completed"]')!).outlineColor, 'rgb(1, 2, 3)');
      } finally {
        style.remove();
      }
      connection.apply(batch1, { type: 'job:completed' });
      await waitFor(() => !launcher.running, 'ready again once the batch ended');
    } finally {
      server.restore();
    }
  });

  it('watches the batch it started over the real connection: its members run, end and are listed', async () => {
    const { endpoint } = (await (await fetch('/test/info')).json()) as { endpoint: string };
    const server = batchServer();
    try {
      const launcher = await mount('backjob-launcher', { batch: JSON.stringify(members), label: 'Count three times', 'show-children': true, href: '/watch/{id}', endpoint });
      await launcher.start();
      const progress = await waitFor(() => inner(launcher), 'the progress view');
      await waitFor(() => progress.status === 'completed', 'the batch to complete');
      await waitFor(() => text(shadowPart(progress, 'children-summary')) === '3 of 3 done', 'every member done');
      equal(shadowPart(progress, 'track')!.getAttribute('aria-valuenow'), '100');
      const ids = [...progress.shadowRoot!.querySelectorAll('[part~="child"]')].map((li) => li.getAttribute('data-job-id'));
      equal(ids.length, 3);
      equal([...progress.shadowRoot!.querySelectorAll('[part~="child-link"]')].map((a) => a.getAttribute('href')), ids.map((id) => `/watch/${id}`));
      ok(ids.every((id) => id && id !== server.sent[0]!.reply.id), 'members are jobs of their own');
      await waitFor(() => !launcher.running, 'ready again once the batch ended');
      await expectAccessible(launcher);
    } finally {
      server.restore();
    }
  });

  it('takes the batch as a property too', async () => {
    const server = batchServer();
    try {
      const launcher = await mount('backjob-launcher', {}, { connection: new FakeConnection(), batch: [{ name: 'count', params: { lines: 1, run } }] });
      await launcher.start();
      equal(server.sent[0]!.body, { batch: [{ name: 'count', params: { lines: 1, run } }] }, 'no title without a label');
      equal(server.sent[0]!.status, 202);
    } finally {
      server.restore();
    }
  });

  const problems: Array<{ why: string; attributes: Record<string, string>; says: string }> = [
    { why: 'a batch and a single job', attributes: { batch: '[{"name":"a"}]', name: 'count' }, says: 'Set either a batch or the name or route of one job, not both.' },
    { why: 'a batch and params of one job', attributes: { batch: '[{"name":"a"}]', params: '{}' }, says: 'Set either a batch or the name or route of one job, not both.' },
    { why: 'an empty batch', attributes: { batch: '[]' }, says: 'The batch attribute must be a JSON list of jobs to start.' },
    { why: 'a batch that is not JSON', attributes: { batch: '[{name:a}]' }, says: 'The batch attribute must be a JSON list of jobs to start.' },
    { why: 'a batch that is an object', attributes: { batch: '{"name":"a"}' }, says: 'The batch attribute must be a JSON list of jobs to start.' },
    { why: 'a member with neither name nor route', attributes: { batch: '[{"name":"a"},{"params":{}}]' }, says: 'Job 2 of the batch: Set either the name or the route of the job to start.' },
    { why: 'a member that is not an object', attributes: { batch: '[{"name":"a"},"b"]' }, says: 'Job 2 of the batch: Set either the name or the route of the job to start.' },
    { why: 'a member whose params are not an object', attributes: { batch: '[{"name":"a","params":[1]}]' }, says: 'Job 1 of the batch: The params attribute must be a JSON object.' },
  ];
  for (const { why, attributes, says } of problems) {
    it(`says what is wrong instead of sending anything: ${why}`, async () => {
      const server = batchServer();
      try {
        const launcher = await mount('backjob-launcher', attributes, { connection: new FakeConnection() });
        await launcher.start();
        await launcher.updateComplete;
        equal(server.sent.length, 0, 'nothing sent');
        const error = shadowPart(launcher, 'error')!;
        equal(error.getAttribute('role'), 'alert');
        equal(text(error), says);
        await expectAccessible(launcher);
      } finally {
        server.restore();
      }
    });
  }

  it("says a member's problem in the page's language", async () => {
    const launcher = await mount('backjob-launcher', { batch: '[{"name":"a"},{}]', lang: 'de' }, { connection: new FakeConnection() });
    await launcher.start();
    await launcher.updateComplete;
    equal(text(shadowPart(launcher, 'error')), 'Auftrag 2 des Stapels: Entweder den Namen oder die Route des Auftrags angeben.');
  });
});
