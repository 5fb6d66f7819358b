/**
 * Small browser-side test helpers: assertions that explain themselves,
 * waiting for a condition instead of sleeping, and axe-core checks.
 */

/** Throws with `message` unless `value` is truthy. */
export function ok(value: unknown, message = 'Expected a truthy value'): asserts value {
  if (!value) throw new Error(message);
}

/** Throws unless `actual === expected` (or both serialize the same, for arrays and objects). */
export function equal<T>(actual: T, expected: T, message?: string): void {
  const same =
    actual === expected ||
    (typeof actual === 'object' && actual !== null && JSON.stringify(actual) === JSON.stringify(expected));
  if (!same) {
    throw new Error(`${message ? `${message}: ` : ''}expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/** Resolves once `condition()` is truthy (returning its value); rejects after `timeout` ms saying what it waited for. */
export async function waitFor<T>(condition: () => T, what: string, timeout = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = condition();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Resolves after the next animation frame (layout and scroll events settled). */
export function nextFrame(): Promise<void> {
  return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve())));
}

/** Creates `tag` with attributes and properties, appends it to the body, and waits for its first render. */
export async function mount<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | boolean> = {},
  properties: Partial<HTMLElementTagNameMap[K]> = {},
): Promise<HTMLElementTagNameMap[K]> {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === true) element.setAttribute(name, '');
    else if (value !== false) element.setAttribute(name, value);
  }
  Object.assign(element, properties);
  document.body.append(element);
  await (element as unknown as { updateComplete: Promise<unknown> }).updateComplete;
  return element;
}

/** Removes everything tests put in the body. */
export function cleanup(): void {
  document.body.replaceChildren();
}

interface AxeResults {
  violations: Array<{ id: string; help: string; nodes: Array<{ target: unknown; failureSummary?: string }> }>;
}
declare global {
  interface Window {
    axe?: { run(context: Element, options?: object): Promise<AxeResults> };
  }
}

let axeLoaded: Promise<void> | undefined;

/** Runs axe-core on `element` (shadow roots included) and throws listing every violation. */
export async function expectAccessible(element: Element): Promise<void> {
  axeLoaded ??= new Promise<void>((resolve, reject) => {
    const script = document.createElement('script');
    script.src = '/node_modules/axe-core/axe.min.js';
    script.onload = () => resolve();
    script.onerror = () => reject(new Error('Could not load axe-core'));
    document.head.append(script);
  });
  await axeLoaded;
  const results = await window.axe!.run(element, { resultTypes: ['violations'] });
  if (results.violations.length) {
    const list = results.violations
      .map((v) => `${v.id}: ${v.help} — ${v.nodes.map((n) => `${JSON.stringify(n.target)} ${n.failureSummary ?? ''}`).join('; ')}`)
      .join('\n');
    throw new Error(`axe found ${results.violations.length} violation(s):\n${list}`);
  }
}
