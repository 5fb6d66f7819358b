// PLACEHOLDER (owned by the live-channel helper): replaced by the real WebSocket hub.
import type { Server } from 'node:http';
import type { AttachOptions, BackJob, Hub } from './types.js';

/** Routes upgrades on `${basePath}/ws` of `server` to the live channel. */
export function attachHub(_backjob: BackJob, _server: Server, _options: AttachOptions = {}): Hub {
  throw new Error('not implemented yet');
}
