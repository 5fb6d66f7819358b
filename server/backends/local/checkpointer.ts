/**
 * Checkpoints an SQLite file's WAL from a worker thread, so the thread that
 * commits never stops for one. A checkpoint copies the WAL's pages into the
 * database file and syncs both: on the committing thread that was a pause of
 * several milliseconds every few thousand pages, in the middle of a flood or
 * of a burst of small jobs.
 *
 * The thread opens its own connection to the file and runs a PASSIVE
 * checkpoint (it never waits for, nor blocks, the writer or readers) when
 * told that commits happened, at most once per {@link INTERVAL_MS}. The
 * writer keeps SQLite's own checkpoint as a backstop at a larger size, for
 * when the thread cannot keep up (a reader holding an old snapshot) or is
 * gone. Durability only gains: the WAL is synced at every checkpoint, now
 * every fraction of a second while jobs report instead of every 16 MB.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** The least time between two checkpoints: each one syncs the WAL and the database file. */
const INTERVAL_MS = 100;

/**
 * The thread's code, as a CommonJS script of its own (`eval`), so it loads
 * the same way from the sources and from the published package. It answers
 * every request once its checkpoint is done, so the writer never has more
 * than one outstanding.
 */
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy or briefly unreadable: the next request, or the writer's own backstop, checkpoints.
  }
  parentPort.postMessage('done');
});
`;

export class Checkpointer {
  /** Started on the first commit: a process that only reads never pays for a thread. */
  private thread: Worker | null = null;
  /** A request is with the thread: commits meanwhile wait for the next. */
  private busy = false;
  /** When the last request was sent. */
  private last = 0;
  /** Commits came while a request was out or too soon after one: the next goes out when it can. */
  private owed = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private exited: Promise<void> = Promise.resolve();

  /** `file` must exist (its writer opened it first), in WAL mode. */
  constructor(private readonly file: string) {}

  private start(): Worker {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    // `execArgv: []`: a script needs no loader hooks the app may run under (tsx, a test runner's).
    const thread = new Worker(THREAD, { eval: true, workerData: { file: this.file, driver }, execArgv: [] });
    this.exited = new Promise((resolve) => thread.once('exit', () => resolve()));
    thread.on('message', () => {
      this.busy = false;
      if (this.owed) this.committed();
    });
    // A thread that failed to start or died leaves the writer's own checkpoints in charge.
    thread.on('error', () => {
      this.closed = true;
    });
    // Never what keeps a process alive: a checkpoint missed at exit is the writer's to do on close.
    // After the listeners: adding a 'message' listener refs the thread again.
    thread.unref();
    return thread;
  }

  /**
   * Commits happened: a checkpoint now, or once the one running is done and
   * {@link INTERVAL_MS} has passed since it began (so the last commits of a
   * burst are checkpointed too, not left for the next burst).
   */
  committed(): void {
    if (this.closed) return;
    this.owed = true;
    if (this.busy || this.timer) return;
    const wait = this.last + INTERVAL_MS - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.committed();
      }, wait);
      this.timer.unref();
      return;
    }
    this.owed = false;
    this.last = Date.now();
    this.busy = true;
    (this.thread ??= this.start()).postMessage('checkpoint');
  }

  /** Closes the thread's connection (before the writer's, whose close then checkpoints the rest and removes the WAL). */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.closed = true;
    const thread = this.thread;
    if (!thread) return;
    thread.postMessage('close');
    // A thread stuck in a checkpoint that long is stopped: its connection's end is SQLite's to recover.
    const stop = setTimeout(() => void thread.terminate(), 2_000);
    await this.exited;
    clearTimeout(stop);
  }
}
