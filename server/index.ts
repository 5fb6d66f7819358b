/**
 * BackJob on the server: `createBackJob` makes the shim an Express app embeds;
 * `sqlite()` (the default) and `memory()` choose where jobs live.
 */
export { createBackJob, BackJobServer } from './core.js';
export { BackjobError, isBackjobError, type BackjobErrorCode } from './errors.js';
export { memory } from './backends/memory.js';
export { sqlite, type SqliteOptions } from './backends/sqlite.js';
export type * from './types.js';
