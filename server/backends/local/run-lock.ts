/**
 * One process at a time runs the jobs of an SQLite file. Its queue and bus
 * live in the process, and its start-up settles every job still marked
 * running as left behind by a dead process: a second process on the same
 * file (a cluster of two, a new process started before the old one stops)
 * would fail the first one's running jobs as interrupted while they still
 * run, and run its waiting jobs a second time.
 *
 * The lock is an exclusive transaction held open on a file of its own next
 * to the database (`<file>-lock`, empty). SQLite takes it with the OS's
 * advisory locks, which the OS lets go of when the process dies however it
 * dies: no pid to check and no stale lock to clean up after `kill -9`, and
 * SQLite also sees a second holder in the same process. The file is never
 * deleted: a process waiting on it would hold a lock on a file nobody else
 * sees any more.
 */
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { BackjobError } from '../../errors.js';

/** How often a waiting process tries the lock again. */
const RETRY_MS = 100;

/**
 * The lock files this process holds, to tell a second BackJob of the same
 * process (a module evaluated again by a hot reload, say) from another
 * process. Kept on `globalThis`: a copy of this module loaded twice still
 * shares it.
 */
const heldHere: Set<string> = ((globalThis as Record<symbol, unknown>)[Symbol.for('backjob.runLocks')] ??= new Set<string>()) as Set<string>;

export class RunLock {
  private held: Database.Database | null = null;
  private released = false;

  /**
   * The lock's own file, absolute: where the database was opened, whatever
   * the working directory is by the time the lock is taken.
   */
  private readonly path: string;

  /**
   * @param file the database file whose jobs the lock is for, as it was just opened.
   * @param waitMs how long {@link take} waits for another process to let go.
   */
  constructor(
    private readonly file: string,
    private readonly waitMs: number,
  ) {
    this.path = resolve(`${file}-lock`);
  }

  /**
   * Resolves once this process holds the lock: at once when nobody else does,
   * or when the process that does stops within the wait (a restart that
   * overlaps the old process's shutdown). Rejects with `BACKJOB_ERR_IN_USE`
   * when it still runs after the wait, and with `BACKJOB_ERR_CLOSED` when
   * `signal` aborts or {@link release} comes first.
   */
  async take(signal?: AbortSignal): Promise<void> {
    // An in-memory database (better-sqlite3: `:memory:`, or '' for a temporary one) is this connection's alone.
    if (this.file === ':memory:' || this.file === '') return;
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      if (this.released || signal?.aborted) throw new BackjobError('BACKJOB_ERR_CLOSED', 'BackJob closed while it waited to run the jobs of its SQLite file');
      if (this.tryTake()) return;
      if (Date.now() >= deadline) {
        const within = `did not stop within ${this.waitMs / 1000} s`;
        throw new BackjobError(
          'BACKJOB_ERR_IN_USE',
          heldHere.has(this.path)
            ? `another BackJob of this process runs the jobs of ${this.file} and ${within}: ` +
                'one BackJob per file (close() the old one first, or keep one across hot reloads, on globalThis say)'
            : `another process runs the jobs of ${this.file} (it holds ${this.path}) and ${within}. ` +
                'SQLite runs the jobs of one file in one process: stop the other process, give each process a file of its own, ' +
                'or use redis() to run jobs in several processes',
        );
      }
      await new Promise<void>((wake) => {
        const retry = setTimeout(done, RETRY_MS);
        signal?.addEventListener('abort', done, { once: true });
        function done() {
          clearTimeout(retry);
          signal?.removeEventListener('abort', done);
          wake();
        }
      });
    }
  }

  /** Lets go of the lock (or stops waiting for it). */
  release(): void {
    this.released = true;
    if (!this.held) return;
    this.held.close();
    this.held = null;
    heldHere.delete(this.path);
  }

  private tryTake(): boolean {
    // No busy timeout: better-sqlite3 would wait for it synchronously, blocking the event loop.
    const db = new Database(this.path, { timeout: 0 });
    try {
      db.exec('BEGIN EXCLUSIVE');
      this.held = db;
      heldHere.add(this.path);
      return true;
    } catch (error) {
      db.close();
      if ((error as { code?: unknown }).code === 'SQLITE_BUSY') return false;
      throw error;
    }
  }
}
