/**
 * JSX types for React 19: `<backjob-progress jobId={id} onbackjob-completed={(e) => e.detail.result} />`
 * type-checks, each property as the element declares it and each event's
 * `detail` as it comes. Types only; load them once in the app with
 * `import type {} from '@backjob/client/react'` (or list the entry in
 * `compilerOptions.types`).
 *
 * React 19 sets a prop on a custom element as a property when the element has
 * one of that name (`jobId`, `params` as an object), else as an attribute
 * (`job-id`, `show-log`: hyphenated names are not type-checked), and adds
 * `on<event name>` props as listeners of that event, hence `onbackjob-completed`.
 */
import type { DetailedHTMLProps, HTMLAttributes } from 'react';
import type { LitElement } from 'lit';
import type { BackjobElements, BackjobListener, ElementProperties } from './element-props.js';
import type { BackjobEventMap } from './events.js';

/** `onbackjob-…` listener props for the events `N`. */
export type BackjobReactEventProps<N extends keyof BackjobEventMap> = { [K in N as `on${K}`]?: BackjobListener<K> };

/** The JSX props of an element: React's for any HTML element, its own properties, and its events. */
export type BackjobReactProps<E extends LitElement, N extends keyof BackjobEventMap> = DetailedHTMLProps<HTMLAttributes<E>, E> &
  ElementProperties<E> &
  BackjobReactEventProps<N>;

type Props<T extends keyof BackjobElements> = BackjobReactProps<BackjobElements[T]['element'], BackjobElements[T]['events']>;

declare module 'react' {
  namespace JSX {
    interface IntrinsicElements {
      'backjob-progress': Props<'backjob-progress'>;
      'backjob-log': Props<'backjob-log'>;
      'backjob-launcher': Props<'backjob-launcher'>;
      'backjob-jobs': Props<'backjob-jobs'>;
    }
  }
}
