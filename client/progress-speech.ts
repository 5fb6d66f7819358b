/**
 * What `<backjob-progress>` says about the job it shows, through the page's
 * one announcer (`announcer.ts` has the rules): that it waits or started,
 * the 25/50/75 % milestones read as the value they have when they go out, a
 * lost and a restored connection, the end at once, and (`family-speech.ts`)
 * its steps' ends and its children's failures. One per job shown.
 */
import { isEnded, type JobSnapshot } from '../shared/protocol.js';
import { announcer } from './announcer.js';
import { FamilySpeech } from './family-speech.js';
import type { LocalizeController } from './localize.js';
import { endReason, percent } from './progress-words.js';

/** Progress milestones announced to screen readers, in percent. */
const MILESTONE_STEP = 25;

export class ProgressSpeech {
  private started = false;
  /** The state of the last snapshot before the end: waiting, then running, is a start to tell. */
  private lastStatus?: JobSnapshot['status'];
  private milestone = 0;
  private disconnected = false;
  private ended = false;
  private readonly family: FamilySpeech;

  /**
   * @param label - The job's accessible label, when a sentence is made.
   * @param current - The job's snapshot now, or undefined once the element no longer shows it (a milestone then says nothing).
   */
  constructor(
    private readonly jobId: string,
    private readonly localize: LocalizeController,
    private readonly label: () => string,
    private readonly current: () => JobSnapshot | undefined,
  ) {
    this.family = new FamilySpeech(jobId, localize, label);
  }

  /** Says what changed since the last snapshot; `quiet` (the first snapshot is a baseline) only notes it. */
  tell(snapshot: JobSnapshot, quiet: boolean, disconnected: boolean): void {
    const jobId = this.jobId;
    const l = this.localize;
    const ended = isEnded(snapshot.status);
    if (!ended && !this.started) {
      this.started = true;
      // Waiting, then running: the same key, so a quick start is said once, as "started".
      if (!quiet) this.say(snapshot.status === 'waiting' ? 'announceWaiting' : 'announceStarted');
    } else if (!ended && snapshot.status === 'running' && this.lastStatus === 'waiting') {
      this.say('announceStarted');
    }
    if (!ended) this.lastStatus = snapshot.status;
    // Before the end is said: a step that ended with the job is told by that end.
    this.family.tell(snapshot, quiet);
    const milestone = Math.floor((snapshot.progress ?? 0) / MILESTONE_STEP) * MILESTONE_STEP;
    if (!ended && milestone > this.milestone && milestone < 100) {
      this.milestone = milestone;
      if (!quiet) {
        // Read when it goes out: the value then, not the milestone that queued it.
        announcer.announce({
          key: `${jobId}:progress`,
          group: jobId,
          lang: l.langOf('announceProgress'),
          text: () => {
            const now = this.current();
            if (now?.id !== jobId || now.status !== 'running' || now.progress === null) return '';
            return l.format('announceProgress', this.label(), l.percent(percent(now))).text;
          },
        });
      }
    }
    if (!ended && disconnected !== this.disconnected) {
      // Said once per page however many elements share the connection (the announcer drops repeats).
      const lost = l.term('announceConnectionLost');
      if (disconnected) {
        announcer.announce({ key: 'connection', text: lost.text, lang: lost.lang });
      } else {
        // A loss not said yet when the connection is back was a blip: neither is said.
        announcer.withdraw('connection', lost.text);
        const restored = l.term('announceConnectionRestored');
        announcer.announce({ key: 'connection', text: () => (announcer.said('connection') === lost.text ? restored.text : ''), lang: restored.lang });
      }
      this.disconnected = disconnected;
    }
    if (ended && !this.ended) {
      this.ended = true;
      if (quiet) return;
      const status = l.term(snapshot.status).text.toLowerCase();
      const term = l.format('announceEnded', this.label(), status, endReason(l, snapshot)?.text ?? '');
      announcer.announce({ key: `${jobId}:progress`, group: jobId, end: true, text: term.text, lang: term.lang });
    }
  }

  /** Drops what waits to be said about the job (the element stopped showing it); its end is never dropped. */
  withdraw(): void {
    announcer.withdraw(`${this.jobId}:progress`);
    this.family.withdraw();
  }

  /** Announces that the job waits or started (one key with its milestones: the latest wins). */
  private say(term: 'announceStarted' | 'announceWaiting'): void {
    const words = this.localize.format(term, this.label());
    announcer.announce({ key: `${this.jobId}:progress`, group: this.jobId, text: words.text, lang: words.lang });
  }
}
