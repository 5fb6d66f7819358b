/**
 * What `<backjob-progress>` says about a job's parts, through the page's one
 * announcer and by its rules (one announcement per interval, nothing about
 * a job after its end): a step's end ("Transform done", "Step Upload
 * failed"), and children that failed. Failures are counted until they are
 * said, so a batch of a thousand whose members fail by the hundred says
 * "120 jobs of Export failed" once an interval, never one line per member;
 * progress of members is not news of its own (the job's milestones tell it).
 */
import { isEnded, type JobSnapshot, type JobStatus, type StepState } from '../shared/protocol.js';
import { announcer } from './announcer.js';
import type { LocalizeController } from './localize.js';
import { jobTitle } from './names.js';
import { stepTitle } from './job-family.js';

const stepEnded = (state: StepState) => state === 'completed' || state === 'failed';

/** One job's parts as last told; make a new one per job watched. */
export class FamilySpeech {
  private readonly steps = new Map<string, StepState>();
  private readonly children = new Map<string, JobStatus>();
  /** The children array last seen: the fold keeps unchanged children's objects, so those are skipped by identity. */
  private lastChildren: JobSnapshot['children'];
  /** Failures not said yet: how many, and the last one's title (said by name when it is the only one). */
  private unsaid = { count: 0, title: '' };

  constructor(
    private readonly jobId: string,
    private readonly localize: LocalizeController,
    /** The job's accessible label, read when an announcement goes out. */
    private readonly label: () => string,
  ) {}

  /** Notes what changed since the last snapshot; says it unless `quiet` (the first snapshot only sets the baseline). */
  tell(snapshot: JobSnapshot, quiet: boolean): void {
    this.tellSteps(snapshot, quiet);
    this.tellChildren(snapshot, quiet);
  }

  private tellSteps(snapshot: JobSnapshot, quiet: boolean): void {
    let ended: { title: string; state: StepState } | undefined;
    for (const step of snapshot.steps ?? []) {
      const was = this.steps.get(step.name) ?? 'waiting';
      if (was === step.state) continue;
      this.steps.set(step.name, step.state);
      // Several at once (a step starting completes those before it): the latest is what is news.
      if (stepEnded(step.state) && !stepEnded(was)) ended = { title: stepTitle(step), state: step.state };
    }
    if (!ended || quiet || isEnded(snapshot.status)) return; // how the job ended says it all
    const words = this.localize.format(ended.state === 'failed' ? 'announceStepFailed' : 'announceStepDone', ended.title);
    announcer.announce({ key: `${this.jobId}:step`, group: this.jobId, text: words.text, lang: words.lang });
  }

  private tellChildren(snapshot: JobSnapshot, quiet: boolean): void {
    const children = snapshot.children;
    if (!children || children === this.lastChildren) return;
    const before = this.lastChildren;
    this.lastChildren = children;
    let failed = 0;
    let title = '';
    children.forEach((child, i) => {
      if (before?.[i] === child) return;
      const was = this.children.get(child.id);
      if (was === child.status) return;
      this.children.set(child.id, child.status);
      if (child.status === 'failed') {
        failed++;
        title = jobTitle(child);
      }
    });
    if (!failed || quiet) return;
    this.unsaid = { count: this.unsaid.count + failed, title };
    const lang = this.localize.langOf(this.unsaid.count === 1 ? 'announceChildFailed' : 'announceChildrenFailed');
    announcer.announce({
      key: `${this.jobId}:children`,
      group: this.jobId,
      lang,
      // Counted up to the moment it goes out; a second batch of failures later is news again.
      repeat: true,
      text: () => {
        const { count, title } = this.unsaid;
        if (!count) return '';
        const l = this.localize;
        return count === 1 ? l.format('announceChildFailed', title).text : l.format('announceChildrenFailed', this.label(), count, l.number(count)).text;
      },
      onSpoken: () => (this.unsaid = { count: 0, title: '' }),
    });
  }

  /** Drops what waits to be said about this job's parts (the element stopped showing it). */
  withdraw(): void {
    announcer.withdraw(`${this.jobId}:step`);
    announcer.withdraw(`${this.jobId}:children`);
  }
}
