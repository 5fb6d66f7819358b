// What a screen reader hears over a whole job: a launcher with its progress
// and log, a real job on the real test server (20 steps, 0.4 s apart, a log
// line each: the demo's quarterly report), every live-region change recorded
// as it happens in Chromium.
import './index.js';
import type { BackjobLauncher } from './backjob-launcher.js';
import { cleanup, equal, mount, ok, waitFor } from './testing/helpers.js';
import { peak, recordSpeech } from './testing/speech.js';

let endpoint = '';

describe('what a screen reader hears over a demo-like job', function () {
  this.timeout(60_000);

  before(async () => {
    ({ endpoint } = await (await fetch('/test/info')).json());
  });

  afterEach(cleanup);

  /** Runs the demo-like job in a launcher, records everything said, and checks the figures. */
  async function measure(attributes: Record<string, string | boolean>, during?: (launcher: BackjobLauncher) => Promise<void>) {
    const launcher = (await mount('backjob-launcher', {
      endpoint,
      name: 'count',
      params: JSON.stringify({ lines: 20, delayMs: 400, run: `${Date.now()}-${Math.random()}` }),
      'show-log': true,
      cancelable: true,
      ...attributes,
    })) as BackjobLauncher;
    const speech = recordSpeech();
    let endedAt = 0;
    document.addEventListener('backjob-completed', () => (endedAt = performance.now()), { once: true });
    const startedAt = performance.now();
    launcher.shadowRoot!.querySelector<HTMLElement>('[part="button"]')!.click();
    await during?.(launcher);
    await waitFor(() => endedAt, 'the job to complete', 30_000);
    // Long enough for anything still queued (a late milestone) to come out.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    speech.stop();
    const heard = speech.heard;
    const seconds = (endedAt - startedAt) / 1000;
    const end = heard.find((h) => /completed/i.test(h.text));
    const figures = {
      announcements: heard.length,
      jobSeconds: Number(seconds.toFixed(1)),
      perSecond: Number((heard.length / seconds).toFixed(2)),
      peakPerSecond: peak(heard),
      endHeardAfterMs: end ? Math.round(end.at - endedAt) : null,
      spokenChars: heard.reduce((n, h) => n + h.text.length, 0),
      heard: heard.map((h) => `${((h.at - startedAt) / 1000).toFixed(2)}s ${h.text}`),
    };
    console.log(JSON.stringify(figures, null, 1));
    ok(end, 'the end was announced');
    ok(figures.perSecond <= 0.5, `at most one announcement per 2 s on average (${figures.perSecond}/s)`);
    ok(figures.peakPerSecond <= 2, `never more than 2 in one second (${figures.peakPerSecond})`);
    ok(figures.endHeardAfterMs! <= 1000, `the end heard within 1 s (${figures.endHeardAfterMs} ms)`);
    equal(heard.filter((h) => h.at > end.at).length, 0, 'nothing after the end');
    ok(heard[0] && heard[0].at - startedAt < 1500 && /started|waiting/.test(heard[0].text), `the start is said first (${heard[0]?.text})`);
    return heard;
  }

  it("by default (the log's lines unread): the start, a milestone or two, the end at once", async () => {
    const heard = await measure({});
    ok(!heard.some((h) => /line \d/.test(h.text)), 'no log line is read');
  });

  it('with log-live="summary": a line count rides along with the milestones, within the same budget', async () => {
    const heard = await measure({ 'log-live': 'summary' }, async (launcher) => {
      // And a socket cut mid-job: the rules hold through the reconnect.
      await waitFor(() => (launcher.shadowRoot!.querySelector('backjob-log')?.text.length ?? 0) >= 6, 'six lines');
      await fetch('/test/drop-sockets', { method: 'POST' });
    });
    ok(heard.some((h) => /\d+ new log lines/.test(h.text)), 'a summary of new lines was said');
    ok(!heard.some((h) => /line \d/.test(h.text)), 'no log line is read');
  });
});
