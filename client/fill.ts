/**
 * `fill(percent)`: sets a bar's width through the CSSOM on every render.
 * Lit's `styleMap` writes a `style` attribute on its first render, which a
 * strict CSP (`style-src 'self'`) refuses; this never writes one, and on the
 * server (SSR) it writes nothing: the bar is drawn once the element hydrates.
 */
import { noChange } from 'lit';
import { Directive, PartType, directive, type ElementPart, type PartInfo } from 'lit/directive.js';

class FillDirective extends Directive {
  private last?: string;

  constructor(info: PartInfo) {
    super(info);
    if (info.type !== PartType.ELEMENT) throw new Error('fill() belongs on an element: <div ${fill(42)}>');
  }

  render(_percent: number) {
    return noChange;
  }

  override update(part: ElementPart, [percent]: [number]) {
    const width = `${Math.min(100, Math.max(0, percent))}%`;
    if (width !== this.last) (part.element as HTMLElement).style.setProperty('width', width);
    this.last = width;
    return noChange;
  }
}

/** The element's width, `percent` % of its container's (clamped to 0–100). */
export const fill = directive(FillDirective);
