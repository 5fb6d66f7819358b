/** Accept-once claims (signed dispatches, live tickets): across processes when the backend can, else in this one. */
import type { Backend } from '../types.js';
import { ReplayGuard } from './signing.js';

/** True the first time `key` is claimed within `ttlMs`. */
export type ClaimOnce = (key: string, ttlMs: number) => Promise<boolean>;

export function createClaims(backend: Backend): ClaimOnce {
  if (backend.claimOnce) return (key, ttlMs) => backend.claimOnce!(key, ttlMs);
  // Memory and SQLite serve one process anyway: its own guard is every claim there is.
  const guard = new ReplayGuard();
  return async (key, ttlMs) => guard.claimOnce(key, ttlMs);
}
