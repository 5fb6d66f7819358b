/**
 * The browser side of BackJob. Importing this module registers
 * `<backjob-progress>`, `<backjob-log>`, `<backjob-launcher>` and
 * `<backjob-jobs>`; it also
 * loads in Node (SSR, tests) without touching browser-only APIs.
 */
export { BackjobProgress, formatDuration } from './backjob-progress.js';
export { BackjobLog } from './backjob-log.js';
export { BackjobLauncher } from './backjob-launcher.js';
export { BackjobJobs } from './backjob-jobs.js';
export { BackjobApiError, DEFAULT_BASE_PATH, startJob, type StartJobOptions } from './api.js';
export { configureBackjob, type BackjobClientConfig, type HeadersSource } from './config.js';
export type { TransportChoice } from './transport.js';
export { getConnection } from './connection.js';
export { JobWatchController, type JobWatchHost } from './job-watch-controller.js';
export { Announcer, announcer, type Announcement } from './announcer.js';
export {
  LocalizeController,
  registerTranslation,
  translationFor,
  type FullTranslation,
  type LocalizedTerm,
  type Terms,
  type Translation,
} from './localize.js';
export { humanizeName, jobTitle } from './names.js';
export type {
  BackjobCanceledDetail,
  BackjobCompletedDetail,
  BackjobEventMap,
  BackjobFailedDetail,
  BackjobOpenDetail,
  BackjobProgressDetail,
  BackjobStartDetail,
} from './events.js';
export type { Connection, ConnectionState, JobList, ListPage, ListRequest, ListUpdate, WatchListener, WatchUpdate } from './types.js';
export type {
  BatchMember,
  ChildSnapshot,
  JobSnapshot,
  JobStatus,
  StartReply,
  StartRequest,
  StepSnapshot,
  StepState,
} from '../shared/protocol.js';
