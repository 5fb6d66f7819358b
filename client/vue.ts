/**
 * Template types for Vue 3 (`vue-tsc`, Volar): `<backjob-progress :job-id="id"
 * @backjob-completed="(e) => e.detail.result">` type-checks, each property as
 * the element declares it and each event's `detail` as it comes. Types only;
 * load them once with `import type {} from '@backjob/client/vue'`.
 *
 * At run time Vue must know these are custom elements, not Vue components:
 * `compilerOptions.isCustomElement: (tag) => tag.startsWith('backjob-')` in the
 * Vue plugin's options (`@vitejs/plugin-vue`'s `template.compilerOptions`).
 */
import type { DefineComponent } from 'vue';
import type { LitElement } from 'lit';
import type { BackjobElements, BackjobListener, ElementProperties } from './element-props.js';
import type { BackjobEventMap } from './events.js';

/** The events `N` as Vue's `emits`: `@backjob-completed` gets the CustomEvent. */
export type BackjobVueEmits<N extends keyof BackjobEventMap> = { [K in N]: BackjobListener<K> };

/** An element as a Vue component: its properties as props, its events as emits. */
export type BackjobVueComponent<E extends LitElement, N extends keyof BackjobEventMap> = DefineComponent<
  ElementProperties<E>,
  {},
  {},
  {},
  {},
  {},
  {},
  BackjobVueEmits<N>
>;

type Component<T extends keyof BackjobElements> = BackjobVueComponent<BackjobElements[T]['element'], BackjobElements[T]['events']>;

declare module 'vue' {
  interface GlobalComponents {
    'backjob-progress': Component<'backjob-progress'>;
    'backjob-log': Component<'backjob-log'>;
    'backjob-launcher': Component<'backjob-launcher'>;
    'backjob-jobs': Component<'backjob-jobs'>;
  }
}
