/**
 * BackJob on the server: `createBackJob` makes the shim an Express app embeds;
 * `sqlite()` (the default) and `memory()` choose where jobs live.
 */
export { createBackJob, BackJobServer } from './backjob.js';
export { BackjobError, ERRORS, isBackjobError, type BackjobErrorCode, type RegisteredErrorCode } from './errors.js';
export { memory } from './backends/local/memory.js';
export { sqlite, type SqliteOptions } from './backends/local/sqlite.js';
export type * from './types.js';
export { backjobHandler, dispatchedJob, type NextHandler } from './http/node.js';
