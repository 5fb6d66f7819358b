/**
 * Every word and number the elements show or speak goes through here: a
 * small registry of translations, and a controller that picks the one for
 * the element's nearest `lang` and formats numbers, percentages and
 * durations with `Intl` in that language.
 *
 * Why a registry and not `@lit/localize`: its runtime mode holds one locale
 * for the whole page, set by script, and its transform mode needs a build
 * step per locale. Elements embedded in someone else's page have to follow
 * that page's `lang` (and a part of the page may be in another language than
 * the rest), need no build, and must let the page add a language or change
 * one word. So, in the manner of Shoelace's LocalizeController: translations
 * register by language code, the element's language is the nearest `lang`
 * (the element's own, its ancestors' across shadow roots, the document's),
 * and one MutationObserver re-renders every element when a `lang` or `dir`
 * changes.
 *
 * A translation may be partial: a missing term falls back to English, and
 * {@link LocalizeController.term} says so, so the element marks that string
 * `lang="en"` (a French voice must not read an English word).
 */
import { html, nothing, type ReactiveController, type ReactiveControllerHost, type TemplateResult } from 'lit';
import { de } from './translations/de.js';
import { en } from './translations/en.js';
import { es } from './translations/es.js';
import { fr } from './translations/fr.js';

import type { FullTranslation, Terms, Translation } from './terms.js';

export type { FullTranslation, Terms, Translation } from './terms.js';

const registry = new Map<string, Translation>();
/** Counts registrations, so a view that caches rows (`guard`) knows their words may have changed. */
let registrations = 0;

/** How many times translations were registered: changes whenever any term may have. */
export function translationsVersion(): number {
  return registrations;
}
/** English, complete: where a missing term comes from. */
let fallback: FullTranslation = en;

/**
 * Adds languages, or changes single terms of one already there: the terms
 * given are merged over the registered ones, so
 * `registerTranslation({ $code: 'en', cancel: 'Stop' })` changes one word and
 * keeps the rest. Every element on the page re-renders in its new words.
 * English, built in and complete, is where any missing term comes from;
 * overriding an English term changes the fallback too.
 */
export function registerTranslation(...translations: Translation[]): void {
  for (const translation of translations) {
    const code = translation.$code.toLowerCase();
    const merged = { ...registry.get(code), ...translation, $code: code };
    if (translation.errors) merged.errors = { ...registry.get(code)?.errors, ...translation.errors };
    registry.set(code, merged);
    if (code === 'en') fallback = merged as FullTranslation;
  }
  registrations++;
  for (const controller of controllers) controller.host.requestUpdate();
}

/** The registered translation for `lang` (`de-CH` → `de-ch`, else `de`), if any. */
export function translationFor(lang: string): Translation | undefined {
  const code = lang.toLowerCase();
  return registry.get(code) ?? registry.get(code.split('-')[0]!);
}

/** A `lang` Intl accepts, or `en`. */
function validLocale(lang: string): string {
  try {
    return Intl.getCanonicalLocales(lang)[0] ?? 'en';
  } catch {
    return 'en';
  }
}

/** The nearest ancestor-or-self with `attribute`, looking out of shadow roots into their hosts. */
function closestAcross(element: Element, attribute: string): Element | null {
  let node: Element | null = element;
  // Lit's server-side DOM shim has attributes but no tree: the element's own is all there is.
  if (typeof node.closest !== 'function') return node.getAttribute?.(attribute) ? node : null;
  while (node) {
    const found: Element | null = node.closest(`[${attribute}]`);
    if (found) return found;
    const root = node.getRootNode();
    node = typeof ShadowRoot !== 'undefined' && root instanceof ShadowRoot ? root.host : null;
  }
  return null;
}

/** The controllers of connected elements, to re-render when a language changes. */
const controllers = new Set<LocalizeController>();
let observer: MutationObserver | undefined;

/** Shadow roots the observer watches besides the document (an app's own shadow roots that hold elements). */
const watchedRoots = new WeakSet<ShadowRoot>();
const LANGUAGE_ATTRIBUTES: MutationObserverInit = { attributes: true, attributeFilter: ['lang', 'dir'], subtree: true };

function watchLanguageChanges(host: Element): void {
  if (typeof MutationObserver === 'undefined' || typeof document === 'undefined') return;
  if (!observer) {
    // One observer for the page: `lang` or `dir` changing anywhere re-renders every element (there are few).
    observer = new MutationObserver(() => {
      for (const controller of controllers) controller.host.requestUpdate();
    });
    observer.observe(document.documentElement, LANGUAGE_ATTRIBUTES);
  }
  // The document's subtree stops at shadow roots: a `lang` set inside an app's own shadow root is watched there.
  if (typeof ShadowRoot === 'undefined' || typeof host.getRootNode !== 'function') return;
  for (let root = host.getRootNode(); root instanceof ShadowRoot; root = root.host.getRootNode()) {
    if (watchedRoots.has(root)) continue;
    watchedRoots.add(root);
    observer.observe(root, LANGUAGE_ATTRIBUTES);
  }
}

/** A term in words, with the language it is in (English when the element's language lacks it). */
export interface LocalizedTerm {
  text: string;
  lang: string;
}

type TermKey = { [K in keyof Terms]: Terms[K] extends string ? K : never }[keyof Terms];
type FormatKey = { [K in keyof Terms]: Terms[K] extends (...args: any[]) => string ? K : never }[keyof Terms];

/** `Intl.DurationFormat` (Chromium 129+, Firefox 136+, Safari 16.4+), typed here as TypeScript's lib lacks it. */
type DurationFormatConstructor = new (
  locale: string,
  options: { style: 'digital' | 'long' | 'short' | 'narrow'; hoursDisplay?: 'auto' | 'always' },
) => { format(duration: { hours?: number; minutes?: number; seconds?: number }): string };

/**
 * Gives an element its words and formats in the nearest `lang`. Create one
 * per element (`localize = new LocalizeController(this)`); read it in
 * `render`. It re-renders the element when a `lang`/`dir` changes or a
 * translation is registered.
 */
export class LocalizeController implements ReactiveController {
  readonly host: ReactiveControllerHost & HTMLElement;

  constructor(host: ReactiveControllerHost & HTMLElement) {
    (this.host = host).addController(this);
  }

  hostConnected(): void {
    controllers.add(this);
    watchLanguageChanges(this.host);
  }

  hostDisconnected(): void {
    controllers.delete(this);
  }

  /** The element's language: the nearest `lang` (self, ancestors across shadow roots, the document), else `en`. */
  lang(): string {
    const lang = closestAcross(this.host, 'lang')?.getAttribute('lang') || globalThis.document?.documentElement.lang || 'en';
    return validLocale(lang);
  }

  /** The writing direction: the nearest `dir`, else the document's, else the translation's, else `ltr`. */
  dir(): 'ltr' | 'rtl' {
    const dir = (closestAcross(this.host, 'dir')?.getAttribute('dir') || globalThis.document?.documentElement.dir || '').toLowerCase();
    if (dir === 'rtl' || dir === 'ltr') return dir;
    return translationFor(this.lang())?.$dir ?? 'ltr';
  }

  /** The translation to take `key` from: the element's language's, or English when it has no such term. */
  private source<K extends keyof Terms>(key: K): { terms: Translation; lang: string } {
    const lang = this.lang();
    const own = translationFor(lang);
    if (own && own[key] !== undefined) return { terms: own, lang };
    return { terms: fallback, lang: 'en' };
  }

  /** The language `key` will be told in: the element's, or English when its translation lacks the term. */
  langOf(key: keyof Terms): string {
    return this.source(key).lang;
  }

  /** A fixed term, and the language it is in. */
  term(key: TermKey): LocalizedTerm {
    const { terms, lang } = this.source(key);
    return { text: terms[key] as string, lang };
  }

  /** A sentence with values in it, and the language it is in. */
  format<K extends FormatKey>(key: K, ...args: Parameters<Terms[K]>): LocalizedTerm {
    const { terms, lang } = this.source(key);
    return { text: (terms[key] as (...a: unknown[]) => string)(...args), lang };
  }

  /** A known error code's message in words, or undefined (show the server's own). */
  error(code: string | undefined): LocalizedTerm | undefined {
    if (!code) return undefined;
    const lang = this.lang();
    const own = translationFor(lang)?.errors?.[code];
    if (own) return { text: own, lang };
    const english = fallback.errors[code];
    return english ? { text: english, lang: 'en' } : undefined;
  }

  /** Whether a term in `lang` needs marking inside this element (its primary language differs). */
  differs(lang: string): boolean {
    return lang.split('-')[0]!.toLowerCase() !== this.lang().split('-')[0]!.toLowerCase();
  }

  /** A term for a template: as is, or in a `lang`-marked span when it is in another language than the element. */
  show(term: LocalizedTerm): string | TemplateResult {
    if (!this.differs(term.lang)) return term.text;
    // An English term on a right-to-left page keeps its own direction ("Connecting…", not "…Connecting").
    const dir = translationFor(term.lang)?.$dir;
    return html`<span lang=${term.lang} dir=${dir && dir !== this.dir() ? dir : nothing}>${term.text}</span>`;
  }

  /** A number in the element's language. */
  number(value: number, options?: Intl.NumberFormatOptions): string {
    return new Intl.NumberFormat(this.lang(), options).format(value);
  }

  /** A percentage (0–100, whole) in the element's language: `42%`, `42 %`, `%42`. */
  percent(value: number): string {
    return new Intl.NumberFormat(this.lang(), { style: 'percent', maximumFractionDigits: 0 }).format(value / 100);
  }

  /** Elapsed time as a clock reads it (`01:05`, `1:02:05`), in the digits and separators of `lang` (default: the element's). */
  clock(ms: number, lang = this.lang()): string {
    const { hours, minutes, seconds } = split(Math.max(0, Math.round(ms / 1000)));
    const DurationFormat = (Intl as unknown as { DurationFormat?: DurationFormatConstructor }).DurationFormat;
    if (DurationFormat) {
      // "00:09" under an hour, "1:02:05" from an hour on, with the language's separators ("00.09" in Finnish).
      return new DurationFormat(lang, { style: 'digital', hoursDisplay: 'auto' }).format({ hours, minutes, seconds });
    }
    const two = (n: number) => new Intl.NumberFormat(lang, { minimumIntegerDigits: 2 }).format(n);
    return hours ? `${new Intl.NumberFormat(lang).format(hours)}:${two(minutes)}:${two(seconds)}` : `${two(minutes)}:${two(seconds)}`;
  }

  /**
   * An estimate in words, rounded as an estimate should be ("5 seconds",
   * "2 minutes", "1 hour, 20 minutes"): under a minute to 5 s, never
   * below 5 s; under an hour to the minute. `lang`: the sentence's language
   * (an English fallback sentence gets English units).
   */
  roughDuration(ms: number, lang = this.lang()): string {
    const total = Math.max(1, ms / 1000);
    const rounded = total < 60 ? Math.ceil(total / 5) * 5 : Math.round(total / 60) * 60;
    const { hours, minutes, seconds } = split(rounded);
    const parts = { ...(hours && { hours }), ...(minutes && { minutes }), ...(seconds && { seconds }) };
    const DurationFormat = (Intl as unknown as { DurationFormat?: DurationFormatConstructor }).DurationFormat;
    if (DurationFormat) return new DurationFormat(lang, { style: 'long' }).format(parts);
    const units = Object.entries(parts).map(([unit, n]) =>
      new Intl.NumberFormat(lang, { style: 'unit', unit: unit.slice(0, -1), unitDisplay: 'long' }).format(n),
    );
    return new Intl.ListFormat(lang, { type: 'unit', style: 'long' }).format(units);
  }
}

registerTranslation(en, de, fr, es);

function split(totalSeconds: number): { hours: number; minutes: number; seconds: number } {
  return {
    hours: Math.floor(totalSeconds / 3600),
    minutes: Math.floor((totalSeconds % 3600) / 60),
    seconds: totalSeconds % 60,
  };
}
