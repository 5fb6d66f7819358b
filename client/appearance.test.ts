// How the elements look, measured on computed styles in Chromium: the theme
// follows the page (and the OS only through it), the track and fill keep
// 3:1 in light, dark and forced colours, reduced motion shows a still
// "working, amount unknown", and right-to-left mirrors layout and motion.
import { emulateMedia } from '@web/test-runner-commands';
import './index.js';
import type { BackjobLauncher } from './backjob-launcher.js';
import type { BackjobProgress } from './backjob-progress.js';
import { FakeConnection } from './testing/fake-connection.js';
import { cleanup, equal, expectAccessible, mount, ok } from './testing/helpers.js';

const part = (element: Element, name: string) => element.shadowRoot!.querySelector<HTMLElement>(`[part~="${name}"]`)!;

/** `rgb(…)`/`rgba(…)` → [r, g, b, a]. */
function rgba(color: string): [number, number, number, number] {
  const match = color.match(/rgba?\(([^)]+)\)/);
  if (!match) throw new Error(`Not an rgb colour: ${color}`);
  const [r, g, b, a = 1] = match[1]!.split(/[ ,/]+/).filter(Boolean).map(Number);
  return [r!, g!, b!, a];
}

function luminance(color: string): number {
  const [r, g, b] = rgba(color).map((c, i) => (i < 3 ? c / 255 : c)).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

/** WCAG contrast ratio of two opaque colours. */
function contrast(a: string, b: string): number {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x! + 0.05) / (y! + 0.05);
}

/** The first colour in a gradient (`repeating-linear-gradient(…, rgb(…) 0px, …)`). */
const firstColour = (image: string) => image.match(/rgba?\([^)]+\)/)![0];

async function progress(connection: FakeConnection, jobId: string, attributes: Record<string, string | boolean> = {}) {
  return mount('backjob-progress', { 'job-id': jobId, ...attributes }, { connection });
}

function jobs() {
  const connection = new FakeConnection();
  connection.snapshot('run', { name: 'export', status: 'running', progress: 40 });
  connection.snapshot('idle', { name: 'export', status: 'running', progress: null });
  connection.snapshot('done', { name: 'export', status: 'completed', progress: 100 });
  connection.snapshot('failed', { name: 'export', status: 'failed', progress: 40, error: 'Broke' });
  connection.snapshot('canceled', { name: 'export', status: 'canceled', progress: 40 });
  return connection;
}

describe('appearance', () => {
  afterEach(async () => {
    cleanup();
    document.documentElement.style.removeProperty('color-scheme');
    document.documentElement.removeAttribute('dir');
    await emulateMedia({ colorScheme: 'light', reducedMotion: 'no-preference', forcedColors: 'none' });
  });

  describe('theme by page as well as OS', () => {
    const WHITE = 'rgb(255, 255, 255)';
    const DARK = 'rgb(22, 27, 34)';
    const cases: Array<{ page?: string; os: 'light' | 'dark'; theme?: 'light' | 'dark'; expected: string; why: string }> = [
      { os: 'dark', expected: WHITE, why: 'a page that declares no color-scheme is light, and so is the element, whatever the OS' },
      { page: 'light', os: 'dark', expected: WHITE, why: 'a light page stays light on a dark OS' },
      { page: 'light dark', os: 'dark', expected: DARK, why: 'a page that follows the OS: dark' },
      { page: 'light dark', os: 'light', expected: WHITE, why: 'a page that follows the OS: light' },
      { page: 'dark', os: 'light', expected: DARK, why: 'a dark page on a light OS' },
      { os: 'light', theme: 'dark', expected: DARK, why: 'theme="dark" forces dark' },
      { page: 'dark', os: 'dark', theme: 'light', expected: WHITE, why: 'theme="light" forces light' },
    ];
    for (const { page, os, theme, expected, why } of cases) {
      it(why, async () => {
        if (page) document.documentElement.style.setProperty('color-scheme', page);
        await emulateMedia({ colorScheme: os });
        const element = await progress(jobs(), 'run', theme ? { theme } : {});
        equal(getComputedStyle(part(element, 'base')).backgroundColor, expected);
        const launcher = (await mount('backjob-launcher', { name: 'count', ...(theme && { theme }) }, { connection: jobs() })) as BackjobLauncher;
        launcher.jobId = 'failed';
        await launcher.updateComplete;
        equal(getComputedStyle(part(launcher, 'card')).backgroundColor, expected, "the launcher's card too");
        const inner = launcher.shadowRoot!.querySelector('backjob-progress') as BackjobProgress;
        await inner.updateComplete;
        const label = getComputedStyle(part(inner, 'label')).color;
        ok(contrast(label, expected) >= 4.5, `the label reads on it (${contrast(label, expected).toFixed(2)}:1)`);
        await expectAccessible(launcher);
      });
    }
  });

  describe('non-text contrast of track and fill (≥ 3:1)', () => {
    for (const scheme of ['light', 'dark', 'forced'] as const) {
      it(`in ${scheme === 'forced' ? 'forced colours' : `${scheme} mode`}`, async () => {
        document.documentElement.style.setProperty('color-scheme', 'light dark');
        await emulateMedia(scheme === 'forced' ? { forcedColors: 'active' } : { colorScheme: scheme });
        const connection = jobs();
        for (const jobId of ['run', 'done', 'failed', 'canceled', 'idle']) {
          const element = await progress(connection, jobId);
          const base = getComputedStyle(part(element, 'base')).backgroundColor;
          const track = getComputedStyle(part(element, 'track'));
          const fill = getComputedStyle(part(element, 'indicator')).backgroundColor;
          const outline = contrast(track.borderTopColor, base);
          ok(track.borderTopStyle === 'solid' && parseFloat(track.borderTopWidth) >= 1, 'the track has an outline');
          ok(outline >= 3, `${jobId}: the track's outline against the background is ${outline.toFixed(2)}:1`);
          const againstTrack = contrast(fill, track.backgroundColor);
          ok(againstTrack >= 3, `${jobId}: the fill against the empty track is ${againstTrack.toFixed(2)}:1 (${fill} on ${track.backgroundColor})`);
          const againstBase = contrast(fill, base);
          ok(againstBase >= 3, `${jobId}: the fill against the background is ${againstBase.toFixed(2)}:1`);
        }
      });
    }
  });

  describe("a job's parts: steps and children", () => {
    for (const scheme of ['light', 'dark', 'forced'] as const) {
      it(`keep their words ≥ 4.5:1 and their small bars ≥ 3:1 (${scheme === 'forced' ? 'forced colours' : scheme})`, async () => {
        document.documentElement.style.setProperty('color-scheme', 'light dark');
        await emulateMedia(scheme === 'forced' ? { forcedColors: 'active' } : { colorScheme: scheme });
        const connection = new FakeConnection();
        const child = (id: string, status: 'running' | 'completed' | 'failed' | 'waiting' | 'canceled') =>
          ({ type: 'job:child', child: { id, name: 'part', weight: 1, status, progress: 40 } }) as const;
        connection.apply(
          'family',
          { type: 'job:start', attempt: 1 },
          { type: 'job:steps', steps: [{ name: 'a' }, { name: 'b' }, { name: 'c' }, { name: 'd' }] },
          { type: 'job:step', name: 'a', state: 'skipped' },
          { type: 'job:step', name: 'b', state: 'failed' },
          { type: 'job:step', name: 'c', progress: 40 },
          ...(['running', 'completed', 'failed', 'waiting', 'canceled'] as const).map((status) => child(status, status)),
        );
        const element = await progress(connection, 'family', { 'show-steps': true, 'show-children': true, openable: true });
        const base = getComputedStyle(part(element, 'base')).backgroundColor;
        const words = [...element.shadowRoot!.querySelectorAll<HTMLElement>('[part~="step-status"], [part~="child-status"], [part~="child-link"], [part~="step-summary"], [part~="children-summary"]')];
        ok(words.length === 4 + 5 + 5 + 2, `every word checked (${words.length})`);
        for (const word of words) {
          const ratio = contrast(getComputedStyle(word).color, base);
          ok(ratio >= 4.5, `${word.getAttribute('part')} "${word.textContent!.trim()}": ${ratio.toFixed(2)}:1`);
        }
        for (const track of element.shadowRoot!.querySelectorAll<HTMLElement>('[part~="step-track"], [part~="child-track"]')) {
          const style = getComputedStyle(track);
          const fill = getComputedStyle(track.firstElementChild!).backgroundColor;
          ok(contrast(style.borderTopColor, base) >= 3, `a small bar's outline: ${contrast(style.borderTopColor, base).toFixed(2)}:1`);
          ok(contrast(fill, style.backgroundColor) >= 3, `its fill against its track: ${contrast(fill, style.backgroundColor).toFixed(2)}:1`);
          ok(contrast(fill, base) >= 3, `its fill against the background: ${contrast(fill, base).toFixed(2)}:1`);
        }
        await expectAccessible(element);
      });
    }
  });

  describe('reduced motion', () => {
    it('shows a still, striped full track for "working, amount unknown", never a solid bar that reads as done', async () => {
      document.documentElement.style.setProperty('color-scheme', 'light dark');
      for (const scheme of ['light', 'dark'] as const) {
        await emulateMedia({ reducedMotion: 'reduce', colorScheme: scheme });
        ok(matchMedia('(prefers-reduced-motion: reduce)').matches, 'reduced motion is emulated');
        const element = await progress(jobs(), 'idle');
        const indicator = part(element, 'indicator');
        const style = getComputedStyle(indicator);
        equal(style.animationName, 'none', 'nothing moves');
        equal(indicator.getAnimations().length, 0, 'no running animation');
        equal(Math.round(indicator.getBoundingClientRect().width), Math.round(part(element, 'track').clientWidth), 'over the whole track');
        ok(style.backgroundImage.startsWith('repeating-linear-gradient'), `striped (${style.backgroundImage})`);
        ok(/transparent|rgba\(0, 0, 0, 0\)/.test(style.backgroundImage), 'with gaps the empty track shows through');
        const stripe = firstColour(style.backgroundImage);
        const track = getComputedStyle(part(element, 'track')).backgroundColor;
        ok(contrast(stripe, track) >= 3, `stripes against the track: ${contrast(stripe, track).toFixed(2)}:1 (${scheme})`);
        equal(part(element, 'status').textContent, 'Running', 'and says so in words');
        ok(!part(element, 'track').hasAttribute('aria-valuenow'), 'no value');
        await expectAccessible(element);
        cleanup();
      }
    });

    it('keeps the stripes in forced colours', async () => {
      await emulateMedia({ reducedMotion: 'reduce', forcedColors: 'active' });
      const element = await progress(jobs(), 'idle');
      const image = getComputedStyle(part(element, 'indicator')).backgroundImage;
      ok(image.startsWith('repeating-linear-gradient'), image);
      const base = getComputedStyle(part(element, 'base')).backgroundColor;
      ok(contrast(firstColour(image), base) >= 3, `stripes against Canvas: ${contrast(firstColour(image), base).toFixed(2)}:1`);
    });

    it('with motion allowed, sweeps instead', async () => {
      const element = await progress(jobs(), 'idle');
      equal(getComputedStyle(part(element, 'indicator')).animationName, 'sweep');
    });
  });

  describe('right to left', () => {
    /** Where the sweep is at `fraction` of its cycle: the fill's box relative to the track's. */
    function sweepAt(element: Element, fraction: number) {
      const indicator = part(element, 'indicator');
      const [animation] = indicator.getAnimations();
      ok(animation, 'the sweep runs');
      animation.pause();
      animation.currentTime = 1400 * fraction;
      const track = part(element, 'track').getBoundingClientRect();
      const box = indicator.getBoundingClientRect();
      return { left: box.left - track.left, right: box.right - track.left, visible: Math.min(box.right, track.right) - Math.max(box.left, track.left), width: track.width };
    }

    for (const dir of ['ltr', 'rtl'] as const) {
      it(`runs the indeterminate sweep ${dir === 'ltr' ? 'left to right' : 'right to left'}, visible through the cycle (${dir})`, async () => {
        document.documentElement.dir = dir;
        const element = await progress(jobs(), 'idle');
        const early = sweepAt(element, 0.3);
        const middle = sweepAt(element, 0.5);
        const late = sweepAt(element, 0.7);
        for (const [name, at] of Object.entries({ early, middle, late })) ok(at.visible > at.width * 0.2, `${name}: visible (${at.visible.toFixed(0)} of ${at.width.toFixed(0)} px)`);
        if (dir === 'ltr') ok(early.left < middle.left && middle.left < late.left, `moves rightwards: ${early.left}, ${middle.left}, ${late.left}`);
        else ok(early.right > middle.right && middle.right > late.right, `moves leftwards: ${early.right}, ${middle.right}, ${late.right}`);
      });
    }

    it('mirrors the layout: label at the start, state at the end, the fill from the right', async () => {
      document.documentElement.dir = 'rtl';
      document.documentElement.lang = 'en';
      const element = await progress(jobs(), 'run');
      const base = part(element, 'base').getBoundingClientRect();
      const label = part(element, 'label').getBoundingClientRect();
      const status = part(element, 'status').getBoundingClientRect();
      ok(label.right > status.right, 'the label sits right of the state');
      ok(base.right - label.right < 24, 'the label starts at the right edge');
      const track = part(element, 'track').getBoundingClientRect();
      const fill = part(element, 'indicator').getBoundingClientRect();
      ok(Math.abs(track.right - 1 - fill.right) < 1.5, `the fill starts at the right (${fill.right} vs ${track.right})`);
      ok(Math.abs(fill.width - (track.width - 2) * 0.4) < 2, `and is 40 % wide (${fill.width})`);
      await expectAccessible(element);
    });
  });
});
