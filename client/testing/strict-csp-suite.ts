/**
 * The suite client/strict-csp.test.html runs, on a page served with
 * `style-src 'self'`: no inline `style` attribute anywhere, so no violation,
 * and the bar's width still matches its value.
 */
import '../index.js';
import type { BackjobLauncher } from '../backjob-launcher.js';
import { FakeConnection } from './fake-connection.js';
import { cleanup, equal, mount, ok, waitFor } from './helpers.js';

declare global {
  interface Window {
    __violations: string[];
  }
}

const part = (element: Element, name: string) => element.shadowRoot!.querySelector<HTMLElement>(`[part~="${name}"]`)!;
const nextViolation = () => new Promise<void>((resolve) => document.addEventListener('securitypolicyviolation', () => resolve(), { once: true }));

describe('under a strict CSP (style-src self)', () => {
  afterEach(cleanup);

  it('is really enforced on this page: an inline style attribute is refused', async () => {
    const violation = nextViolation();
    const probe = document.createElement('div');
    probe.setAttribute('style', 'color: red');
    document.body.append(probe);
    await violation;
    ok(window.__violations.some((v) => v.startsWith('style-src')), window.__violations.join('\n'));
    equal(getComputedStyle(probe).color, 'rgb(0, 0, 0)', 'the refused style did not apply');
    window.__violations.length = 0;
  });

  for (const value of [0, 37, 100]) {
    it(`draws the bar at ${value} % without an inline style, and nothing is refused`, async () => {
      const connection = new FakeConnection();
      connection.snapshot('job1', { name: 'export', status: value === 100 ? 'completed' : 'running', progress: value });
      const element = await mount('backjob-progress', { 'job-id': 'job1', cancelable: true }, { connection });
      const track = part(element, 'track');
      const fill = part(element, 'indicator');
      // The track's content box (inside its 1px outline) is what the fill spans.
      await waitFor(() => Math.abs(fill.getBoundingClientRect().width - track.clientWidth * (value / 100)) < 1, `the fill at ${value} %`, 2_000);
      equal(track.getAttribute('aria-valuenow'), String(value));
      connection.snapshot('job1', { status: 'running', progress: 64 });
      await element.updateComplete;
      await waitFor(() => Math.abs(fill.getBoundingClientRect().width - track.clientWidth * 0.64) < 1, 'the fill follows', 2_000);
      equal(window.__violations, [], 'no CSP violation');
    });
  }

  it("draws a job's steps and children with their small bars, and nothing is refused", async () => {
    const connection = new FakeConnection();
    connection.apply(
      'job1',
      { type: 'job:start', attempt: 1 },
      { type: 'job:steps', steps: [{ name: 'a' }, { name: 'b' }] },
      { type: 'job:step', name: 'a', progress: 25 },
      { type: 'job:child', child: { id: 'c1', name: 'part', weight: 1, status: 'running', progress: 70 } },
    );
    const element = await mount('backjob-progress', { 'job-id': 'job1', 'show-steps': true, 'show-children': true }, { connection });
    for (const [kind, value] of [['step', 0.25], ['child', 0.7]] as const) {
      const track = part(element, `${kind}-track`);
      const fill = part(element, `${kind}-indicator`);
      await waitFor(() => Math.abs(fill.getBoundingClientRect().width - track.clientWidth * value) < 1, `the ${kind}'s fill`, 2_000);
    }
    equal(window.__violations, [], 'no CSP violation');
  });

  it('renders a launcher with progress and log, and speaks, with nothing refused', async () => {
    const connection = new FakeConnection();
    connection.snapshot('job1', { name: 'export', status: 'running', progress: 10 });
    const launcher = (await mount('backjob-launcher', { name: 'count', 'show-log': true, cancelable: true }, { connection })) as BackjobLauncher;
    launcher.jobId = 'job1';
    await launcher.updateComplete;
    connection.log('job1', 'one', 'two');
    connection.snapshot('job1', { progress: 60 });
    connection.snapshot('job1', { status: 'failed', error: 'Broke' });
    await waitFor(() => document.querySelector('[data-backjob-announcer]')?.textContent?.includes('failed'), 'the end to be said');
    equal(window.__violations, [], 'no CSP violation');
  });
});
