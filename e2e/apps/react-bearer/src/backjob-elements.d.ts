/**
 * BackJob's elements in React 19's JSX: the attributes and `onbackjob-*`
 * events this page uses. React 19 passes attributes and properties to
 * custom elements and listens to their events by name.
 */
import type { DetailedHTMLProps, HTMLAttributes } from 'react';
import type { BackjobCompletedDetail, BackjobLauncher, BackjobProgress } from 'backjob/client';

type Props<E> = DetailedHTMLProps<HTMLAttributes<E>, E>;

declare module 'react' {
  namespace JSX {
    interface IntrinsicElements {
      'backjob-launcher': Props<BackjobLauncher> & {
        name?: string;
        'show-log'?: boolean;
        cancelable?: boolean;
        'onbackjob-completed'?: (event: CustomEvent<BackjobCompletedDetail>) => void;
      };
      'backjob-progress': Props<BackjobProgress> & { 'job-id'?: string; cancelable?: boolean };
    }
  }
}
