/**
 * What the elements say to screen readers, said through one polite live
 * region for the whole page, so that a launcher's progress and log, or ten
 * progress bars, speak as one voice instead of talking over each other.
 *
 * The rules, in the manner of Carbon's and sl-design's progress speech:
 * - at most one announcement every `interval` (5 s); what waits is merged
 *   into that one, and a newer message with the same key replaces an older
 *   one still waiting (a milestone is read as the value it has when it goes
 *   out, never as a stale one);
 * - the end of a job goes out at once, drops whatever about that job was
 *   still waiting, and nothing about that job is said after it;
 * - never more than two announcements in any second, ends included;
 * - a message is not repeated while it is still the last said for its key
 *   (three elements losing the same connection say so once), unless it
 *   asks to be (`repeat`: a count of new log lines);
 * - the region empties shortly after each announcement, so a screen reader
 *   user who finds it reads nothing stale.
 *
 * The region lives at the end of `document.body` (live regions inside shadow
 * roots are announced unevenly across screen readers). A page that opens
 * the elements in a modal dialog need not move it there: while a modal
 * `<dialog>` is open, the region speaks from inside it, and from the page
 * again once it closes. `announcer.mount(container)` chooses another place.
 */

/** One thing to say. */
export interface Announcement {
  /** A newer announcement with the same key replaces this one while it waits. */
  key: string;
  /** What to say. A function is read when the announcement goes out, so it says what is true then; `''` says nothing. */
  text: string | (() => string);
  /** Its language, when it differs from the page's (marked `lang` in the region). */
  lang?: string;
  /** The job it is about: an end closes the group (see {@link Announcement.end}). */
  group?: string;
  /** How the job ended: said at once, drops what about `group` still waits, and closes `group` for good. */
  end?: boolean;
  /** Said even when it is what was last said for its key: a count of new things ("2 new log lines") is news each time. */
  repeat?: boolean;
  /** Called once it was said (a log's summary resets its count). */
  onSpoken?: () => void;
}

/** The most announcements in any one second. */
const MAX_PER_SECOND = 2;
/** Ended groups remembered, so a late message about a finished job stays silent (oldest forgotten first). */
const MAX_ENDED = 500;
/** How long a newly added region stays empty before it is spoken into: screen readers skip the text of a region added with it. */
const REGION_SETTLE_MS = 150;

/** A page-wide, throttled, polite announcer. Use the shared {@link announcer}. */
export class Announcer {
  /** Least time between two announcements (ends excepted), in ms. */
  interval = 5_000;
  /** How long an announcement stays in the region before it is emptied, in ms. */
  clearAfter = 1_000;

  private region?: HTMLElement;
  private container?: Element;
  private readonly pending = new Map<string, Announcement>();
  private readonly lastSaid = new Map<string, string>();
  private readonly ended = new Set<string>();
  /** When the last few announcements went out (`performance.now()`). */
  private saidAt: number[] = [];
  private timer?: ReturnType<typeof setTimeout>;
  private clearTimer?: ReturnType<typeof setTimeout>;

  /** The live region, once something was said (or it was mounted). */
  get element(): HTMLElement | undefined {
    return this.region;
  }

  /** What was last said for `key`, if anything (since the last {@link Announcer.clear}). */
  said(key: string): string | undefined {
    return this.lastSaid.get(key);
  }

  /** Queues `announcement` by the rules above. */
  announce(announcement: Announcement): void {
    const { group } = announcement;
    if (group !== undefined && this.ended.has(group)) return;
    if (announcement.end && group !== undefined) {
      for (const [key, waiting] of this.pending) if (waiting.group === group) this.pending.delete(key);
      this.ended.add(group);
      if (this.ended.size > MAX_ENDED) this.ended.delete(this.ended.values().next().value!);
    }
    this.pending.delete(announcement.key);
    this.pending.set(announcement.key, announcement);
    this.schedule();
  }

  /**
   * Drops what waits for `key` (an element that stopped showing that job);
   * with `text`, only if that is what waits. True if something was dropped.
   * A job's end is never dropped: a page often removes the element on that
   * very end, and nothing else would say it (its group is closed).
   */
  withdraw(key: string, text?: string): boolean {
    const waiting = this.pending.get(key);
    if (!waiting || waiting.end || (text !== undefined && waiting.text !== text)) return false;
    return this.pending.delete(key);
  }

  /** Drops everything waiting, forgets what was said and empties the region (a single-page app changing route). */
  clear(): void {
    clearTimeout(this.timer);
    clearTimeout(this.clearTimer);
    this.pending.clear();
    this.lastSaid.clear();
    this.ended.clear();
    this.saidAt = [];
    this.region?.replaceChildren();
  }

  /** Puts the region in `container` (default: `document.body`), e.g. a modal dialog that makes the rest of the page inert. */
  mount(container: Element = document.body): HTMLElement {
    const region = (this.region ??= createRegion());
    if (this.container !== container || !region.isConnected) {
      container.append(region);
      this.container = container;
    }
    return region;
  }

  /**
   * Where the region is read: in the open modal dialog, if any (the page
   * behind it is inert), unless the container the page mounted it in is
   * inside that dialog; else in that container while it is shown (not a
   * closed dialog); else in the body.
   */
  private home(): Element {
    const modal = [...document.querySelectorAll('dialog:modal')].at(-1);
    const chosen = this.container?.isConnected && (this.container.checkVisibility?.() ?? true) ? this.container : undefined;
    if (modal) return chosen && modal.contains(chosen) ? chosen : modal;
    return chosen ?? document.body;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (!this.pending.size) return;
    const now = performance.now();
    const urgent = [...this.pending.values()].some((a) => a.end);
    const last = this.saidAt.at(-1) ?? -Infinity;
    const capFree = this.saidAt.length >= MAX_PER_SECOND ? this.saidAt.at(-MAX_PER_SECOND)! + 1000 : -Infinity;
    const at = Math.max(now, capFree, urgent ? -Infinity : last + this.interval);
    this.timer = setTimeout(() => this.flush(), at - now);
  }

  private flush(): void {
    if (typeof document === 'undefined' || !document.body) return;
    const home = this.home();
    if (!this.region?.isConnected || this.region.parentElement !== home) {
      // The first thing said on the page, the body replaced, a modal dialog opened or closed: the region goes in empty, its text a moment later.
      this.region ??= createRegion();
      this.region.replaceChildren();
      home.append(this.region);
      this.timer = setTimeout(() => this.flush(), REGION_SETTLE_MS);
      return;
    }
    const parts: Array<{ text: string; lang?: string }> = [];
    for (const [key, announcement] of this.pending) {
      const text = typeof announcement.text === 'function' ? announcement.text() : announcement.text;
      if (!text || (!announcement.repeat && this.lastSaid.get(key) === text)) continue;
      this.lastSaid.set(key, text);
      parts.push({ text, lang: announcement.lang });
      announcement.onSpoken?.();
    }
    this.pending.clear();
    if (!parts.length) return;
    const region = this.region;
    region.replaceChildren(
      ...parts.map(({ text, lang }, i) => {
        const span = document.createElement('span');
        // Sentences, so a reader pauses between them.
        span.textContent = i < parts.length - 1 && !/[.!?]$/.test(text) ? `${text}. ` : text;
        if (lang) span.lang = lang;
        return span;
      }),
    );
    this.saidAt = [...this.saidAt.slice(-(MAX_PER_SECOND - 1)), performance.now()];
    clearTimeout(this.clearTimer);
    this.clearTimer = setTimeout(() => region.replaceChildren(), this.clearAfter);
  }
}

/** A visually hidden polite region; styled through the CSSOM, which a strict CSP allows (a `style` attribute it does not). */
function createRegion(): HTMLElement {
  const region = document.createElement('div');
  region.setAttribute('aria-live', 'polite');
  region.setAttribute('aria-atomic', 'true');
  region.setAttribute('data-backjob-announcer', '');
  const hidden: Record<string, string> = {
    position: 'absolute',
    width: '1px',
    height: '1px',
    margin: '-1px',
    padding: '0',
    overflow: 'hidden',
    clip: 'rect(0 0 0 0)',
    'white-space': 'nowrap',
    border: '0',
  };
  for (const [property, value] of Object.entries(hidden)) region.style.setProperty(property, value);
  return region;
}

/** The page's one announcer, shared by every element. */
export const announcer = new Announcer();
