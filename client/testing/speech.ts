/**
 * Records what a screen reader would be told: every change to a live region
 * on the page (in the document or in any open shadow root), as it happens.
 * A region counts while it is live (`aria-live` polite or assertive, or a
 * `log`/`status`/`alert` role not switched off); each batch of changes a
 * MutationObserver reports for one region is one announcement.
 */
import { announcer } from '../announcer.js';

/** One announcement: when, and the text that was added. */
export interface Heard {
  at: number;
  text: string;
}

/** Whether a screen reader would read changes to `element` now. */
function isLive(element: Element): boolean {
  const live = element.getAttribute('aria-live');
  if (live === 'polite' || live === 'assertive') return true;
  if (live === 'off') return false;
  return ['log', 'status', 'alert'].includes(element.getAttribute('role') ?? '');
}

/** Every element under `root`, shadow roots included. */
function* allElements(root: Document | ShadowRoot): Generator<Element> {
  for (const element of root.querySelectorAll('*')) {
    yield element;
    if (element.shadowRoot) yield* allElements(element.shadowRoot);
  }
}

/** The nearest live region around `node` (itself included), across nothing: live regions don't span shadow roots. */
function liveRegionOf(node: Node): Element | null {
  let element: Element | null = node instanceof Element ? node : node.parentElement;
  while (element) {
    if (element.hasAttribute('aria-live') || ['log', 'status', 'alert'].includes(element.getAttribute('role') ?? '')) {
      return isLive(element) ? element : null;
    }
    element = element.parentElement;
  }
  return null;
}

/** Starts recording; `stop()` ends it. `heard` fills as announcements happen. */
export function recordSpeech(): { heard: Heard[]; stop(): void } {
  const heard: Heard[] = [];
  const observed = new WeakSet<Node>();
  const observer = new MutationObserver((records) => {
    // One callback may carry several regions' changes: one announcement per region.
    const byRegion = new Map<Element, string[]>();
    for (const record of records) {
      const region = liveRegionOf(record.target);
      if (!region) continue;
      const texts = byRegion.get(region) ?? [];
      if (record.type === 'characterData') texts.push(record.target.textContent ?? '');
      for (const node of record.addedNodes) texts.push(node.textContent ?? '');
      byRegion.set(region, texts);
    }
    const at = performance.now();
    for (const [region, texts] of byRegion) {
      const text = region.getAttribute('aria-atomic') === 'true' ? (region.textContent ?? '') : texts.join(' ');
      if (text.trim()) heard.push({ at, text: text.replace(/[ \t\n\r]+/g, ' ').trim() });
    }
  });
  const observeRoots = () => {
    for (const root of [document, ...[...allElements(document)].flatMap((e) => (e.shadowRoot ? [e.shadowRoot] : []))]) {
      if (observed.has(root)) continue;
      observed.add(root);
      observer.observe(root, { childList: true, subtree: true, characterData: true });
    }
  };
  observeRoots();
  // New elements bring new shadow roots: look for them often.
  const scan = setInterval(observeRoots, 20);
  return {
    heard,
    stop() {
      clearInterval(scan);
      observer.disconnect();
    },
  };
}

/**
 * Records what the page's one announcer says, its throttle set to `interval`
 * ms (the rules as in production, on a shorter clock) and its queue empty;
 * `stop()` ends the recording, empties the queue and puts the throttle back.
 */
export function hearAnnouncer(interval: number): { heard: Heard[]; stop(): void } {
  announcer.clear();
  const before = announcer.interval;
  announcer.interval = interval;
  const speech = recordSpeech();
  return {
    heard: speech.heard,
    stop() {
      speech.stop();
      announcer.clear();
      announcer.interval = before;
    },
  };
}

/** Most announcements within any window of `windowMs`. */
export function peak(heard: Heard[], windowMs = 1000): number {
  let most = 0;
  for (let i = 0; i < heard.length; i++) {
    let n = 0;
    for (let j = i; j < heard.length && heard[j]!.at - heard[i]!.at < windowMs; j++) n++;
    most = Math.max(most, n);
  }
  return most;
}
