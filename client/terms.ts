/**
 * What a translation is: the terms every element says, as types only, so the
 * translations and the code that picks among them (localize.ts) both depend
 * on this and not on each other.
 */

/** The terms every element uses. Functions take what the sentence needs. */
export interface Terms {
  waiting: string;
  running: string;
  completed: string;
  failed: string;
  canceled: string;
  /** Before the first snapshot. */
  connecting: string;
  /** The live channel is retrying. */
  reconnecting: string;
  /** The server refused to show the job. */
  unavailable: string;
  /** A progress element with no `job-id`. */
  noJob: string;
  cancel: string;
  canceling: string;
  /** `duration` is already formatted. */
  elapsed: (duration: string) => string;
  /** An estimate; `duration` is already formatted ("2 minutes"). */
  timeLeft: (duration: string) => string;
  /** Default label of a progress bar whose job has no name yet. */
  jobProgress: string;
  /** Accessible name of a job's log. */
  logOf: (job: string) => string;
  /** Accessible name of a log whose job has no name yet. */
  jobLog: string;
  /** A running job's log before its first line. */
  noOutputYet: string;
  /** An ended job's log that has no line. */
  noOutput: string;
  /** The launcher's button when the page gives it no label. */
  start: string;
  /** The launcher says an identical running job was joined. */
  joined: string;
  /** The launcher has neither or both of `name` and `route`. */
  nameOrRoute: string;
  /** `attribute` is `params` or `body`. */
  notJsonObject: (attribute: string) => string;
  /** Spoken: the job started (or is queued). */
  announceStarted: (job: string) => string;
  announceWaiting: (job: string) => string;
  /** Spoken: progress now; `percent` already formatted. */
  announceProgress: (job: string, percent: string) => string;
  /** Spoken: how it ended; `reason` may be empty. */
  announceEnded: (job: string, status: string, reason: string) => string;
  announceConnectionLost: string;
  announceConnectionRestored: string;
  /** Spoken by a log in summary mode. */
  announceNewLines: (count: number, formatted: string) => string;
  /** `<backjob-jobs>`: its default accessible name. */
  yourJobs: string;
  /** `<backjob-jobs>` column headers. */
  columnJob: string;
  columnStatus: string;
  columnProgress: string;
  columnStarted: string;
  columnDuration: string;
  columnActions: string;
  /** `<backjob-jobs>`: the status filter's label, and its choice for every status. */
  filterLabel: string;
  allJobs: string;
  /** `<backjob-jobs>`: loads the next page. */
  showMore: string;
  /** `<backjob-jobs>`: the user has no job (in the filter). */
  noJobs: string;
  /** `<backjob-jobs>`: nobody is signed in, so there are no own jobs to list. */
  signInForJobs: string;
  /** `<backjob-jobs>`: a job that has not started yet has no start time. */
  notStarted: string;
  /** `<backjob-jobs>`: read for a cell shown as "—" (no progress to tell: unknown, or the job failed or was canceled). */
  notAvailable: string;
  /** `<backjob-jobs>`: the accessible name of a row's cancel button. */
  cancelJob: (job: string) => string;
  /** A step the job passed over. */
  skipped: string;
  /** The step a job is at, `position` and `total` already formatted: "Step 2 of 3: Transform". */
  stepOf: (position: string, total: string, step: string) => string;
  /** The step an ended job failed at. */
  failedAtStep: (position: string, total: string, step: string) => string;
  /** Accessible name of a job's list of steps. */
  stepsOf: (job: string) => string;
  /** How many of a job's children (or a batch's members) have ended: the counts, for plurals, then formatted. */
  childrenDone: (done: number, total: number, formattedDone: string, formattedTotal: string) => string;
  /** How many of them failed. */
  childrenFailed: (count: number, formatted: string) => string;
  /** Accessible name of the list of jobs a job started. */
  childJobsOf: (job: string) => string;
  /** Accessible name of the list of a batch's jobs. */
  batchJobsOf: (job: string) => string;
  /** Shows every child of a long list; `count` formatted too. */
  showAll: (count: number, formatted: string) => string;
  /** Shows the first few children only, again. */
  showFewer: string;
  /** Spoken: a step ended. */
  announceStepDone: (step: string) => string;
  announceStepFailed: (step: string) => string;
  /** Spoken: one child failed since the last announcement, or `count` of them. */
  announceChildFailed: (child: string) => string;
  announceChildrenFailed: (job: string, count: number, formatted: string) => string;
  /** The launcher has a `batch` and a `name` or `route`. */
  batchOrSingle: string;
  /** The launcher's `batch` is not a non-empty list. */
  batchNotList: string;
  /** What is wrong with one job of the launcher's batch; `position` formatted, `problem` a sentence. */
  batchMember: (position: string, problem: string) => string;
  /** Refusals and failures the client knows by code; others show the server's (English) message. */
  errors: Partial<Record<string, string>>;
}

/** A translation: a language code, its name in itself, its writing direction, and its terms. */
export interface Translation extends Partial<Terms> {
  /** BCP 47 code, lower case: `de`, `pt-br`. */
  $code: string;
  /** The language's name in itself: `Deutsch`. */
  $name?: string;
  $dir?: 'ltr' | 'rtl';
}

/** A complete translation: what English is. */
export type FullTranslation = Terms & Translation;
