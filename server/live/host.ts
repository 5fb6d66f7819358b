/**
 * What the live part needs of the shim, and nothing more: the seam between
 * `server/live/` and the core. The object `createBackJob` returns fits it
 * structurally; a test can pass a smaller one.
 */
import type { IncomingMessage } from 'node:http';
import type { Access, BusNotice, JobCursor, JobRecord, JobStatus } from '../types.js';
import type { JobEvent } from '../../shared/protocol.js';

export interface LiveHost {
  /** `basePath` places the endpoints (`{basePath}/ws`, `{basePath}/events`). */
  readonly options: { readonly basePath: string };
  readonly backend: {
    readonly store: {
      eventsAfter(id: string, afterSeq: number, limit: number): Promise<JobEvent[]>;
      get(id: string): Promise<JobRecord | null>;
      list(filter: { owner?: string | null; status?: JobStatus | JobStatus[]; limit?: number; before?: JobCursor }): Promise<JobRecord[]>;
    };
    readonly bus: { subscribe(listener: (notice: BusNotice) => void): () => void };
  };
  /** The principal of a request (the app's `identify`), or null for nobody. */
  identify(req: IncomingMessage): Promise<string | null>;
  /** The job, if `access` may watch and cancel it; null for unknown and forbidden alike. */
  authorize(id: string, access: Access): Promise<JobRecord | null>;
  cancel(id: string, reason?: string): Promise<boolean>;
  /** Whether a page at `origin` may drive BackJob through `req`. */
  originAllowed(origin: string, req: IncomingMessage): boolean;
  /** An error the live channel survived, for the app's `error` listeners. */
  reportError(error: unknown): void;
  /** The HMAC key tickets are sealed with. */
  key(): Buffer;
  /** True the first time `key` is claimed within `ttlMs` (a ticket is used once). */
  claimOnce(key: string, ttlMs: number): Promise<boolean>;
}
