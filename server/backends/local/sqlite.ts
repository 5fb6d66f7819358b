/**
 * The default backend: jobs in an embedded SQLite file (better-sqlite3), run
 * by this process through the local bus and queue. One process per file (the
 * run lock makes sure of it): at start-up every job still marked running
 * belongs to a process that is gone.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { END_STATUSES, isEnded } from '../../../shared/protocol.js';
import type { AppendResult, Backend, JobEvent, JobEventData, JobRecord, JobStore, ListFilter, NewJob } from '../../types.js';
import { Checkpointer } from './checkpointer.js';
import { RunLock } from './run-lock.js';
import { localBackend } from './local.js';
import { appendToRecord, createRecord, overQuota, queueKeyOf } from '../../core/records.js';
import { nonNegativeOption } from '../../validate.js';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    owner TEXT,
    queue_key TEXT,
    merge_key TEXT,
    created_at INTEGER NOT NULL,
    ended_at INTEGER,
    record TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at);
  CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);
  CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, created_at);
  -- At most one active job per merge key: the database itself refuses a duplicate.
  CREATE UNIQUE INDEX IF NOT EXISTS jobs_active_merge_key ON jobs (merge_key)
    WHERE merge_key IS NOT NULL AND status IN ('waiting', 'running');
  CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS credentials (
    job_id TEXT PRIMARY KEY,
    sealed TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;
`;

/**
 * Brings a database written by an earlier version up to date. Run after
 * {@link SCHEMA}, whose `CREATE TABLE IF NOT EXISTS` leaves an existing table
 * as it was.
 */
function migrate(db: Database.Database): void {
  const hasQueueKey = () => db.prepare<[], { name: string }>('PRAGMA table_info(jobs)').all().some((column) => column.name === 'queue_key');
  if (!hasQueueKey()) {
    // Looked at again under the write lock: another process opening the file may have migrated it meanwhile.
    db.transaction(() => {
      if (hasQueueKey()) return;
      db.exec('ALTER TABLE jobs ADD COLUMN queue_key TEXT');
      // The key `queueKeyOf` gives a row without one, so the quota counts old waiting jobs too.
      db.exec("UPDATE jobs SET queue_key = CASE WHEN owner IS NULL THEN 'app' ELSE 'user:' || owner END");
    }).immediate();
  }
  // The quota counts one key's waiting jobs on every start made for a request.
  db.exec("CREATE INDEX IF NOT EXISTS jobs_waiting_by_queue_key ON jobs (queue_key) WHERE status = 'waiting'");
  // Families: a job's children (`list({ parent })`) and a root's whole family (retention). Rows
  // written before families existed have neither: each is a root of its own.
  const columns = () => new Set(db.prepare<[], { name: string }>('PRAGMA table_info(jobs)').all().map((column) => column.name));
  if (!columns().has('root')) {
    db.transaction(() => {
      if (columns().has('root')) return;
      db.exec('ALTER TABLE jobs ADD COLUMN parent TEXT');
      db.exec('ALTER TABLE jobs ADD COLUMN root TEXT');
    }).immediate();
  }
  db.exec('CREATE INDEX IF NOT EXISTS jobs_by_parent ON jobs (parent, created_at) WHERE parent IS NOT NULL');
  db.exec('CREATE INDEX IF NOT EXISTS jobs_by_root ON jobs (root) WHERE root IS NOT NULL');
}

const ENDED_LIST = END_STATUSES.map((s) => `'${s}'`).join(', ');

/**
 * Most events one `events` row holds. The events of one job in one commit are
 * stored as runs ({@link StoredRun}, keyed by the run's last seq) rather than
 * a row each: a flood of log lines costs an INSERT and an index entry per run,
 * not per line. Small enough that resuming inside a run reads little it skips.
 */
const EVENTS_PER_ROW = 256;

/**
 * An `events` row holding events `seq`, `seq + 1`, … of its job, all stored
 * at `at`, each kept as reported (without the job id, seq and time every one
 * of them shares): a run of log lines as their lines, any other run as its
 * events. Half the bytes to write and serialize per log line. A row holding
 * one event holds the event itself, as rows always did.
 */
type StoredRun = { seq: number; at: number } & ({ lines: string[] } | { events: JobEventData[] });

/** Whether JSON would give `event` back as it is: only strings and numbers, no object the app holds. */
function isPlainEvent(event: JobEvent): boolean {
  return event.type === 'job:log' || event.type === 'job:progress' || event.type === 'job:start' || event.type === 'job:created';
}

/**
 * A {@link JobStore} in one SQLite file. Rows keep the whole record as JSON
 * plus the columns queries filter on; events are keyed by (job, seq), one
 * row per event or per run of a commit's events (see {@link EVENTS_PER_ROW}).
 *
 * Durability: the database runs in WAL mode with `synchronous = NORMAL`. A
 * commit is appended to the WAL file before `append()` returns, so a process
 * killed with `kill -9` loses nothing it acknowledged (the OS still holds the
 * written pages). Only a power loss or OS crash can drop the last few commits
 * since the previous WAL sync, which comes with every checkpoint: within
 * about 100 ms of a commit while the checkpoint thread keeps up (see
 * `checkpointer.ts`), every 16,384 pages of WAL when it does not. The
 * database is never corrupted. This trades that narrow window for group
 * commits that cost no fsync each.
 */
export class SqliteStore implements JobStore {
  /**
   * The open database, for tests and tools that want to look inside.
   * @internal Left out of the published types, which then name nothing of
   * better-sqlite3's: an app compiles them without its type package.
   */
  readonly db: Database.Database;
  private readonly statements;
  private readonly appendBatch;
  private readonly createJob;
  private readonly deleteOld;
  private readonly checkpointer: Checkpointer;
  /**
   * The rows of unended jobs as this connection last wrote them, parsed: an
   * append then folds into the row it holds instead of reading and parsing it
   * again (a job's dozen appends cost one parse). Valid while no other
   * connection has committed (`PRAGMA data_version`, looked at under the write
   * lock before each append), and dropped whenever a transaction fails (what it
   * wrote is rolled back). The objects are handed out as they are: stores'
   * callers never change a record they are given.
   */
  private readonly rows = new Map<string, JobRecord>();
  private rowsVersion = -1;

  /** Opens (creating if needed) the database file at `file`. */
  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    // Checkpoints run on a thread of their own (`Checkpointer`); this connection's own, which stop
    // it for the copy and two syncs, are only the backstop for when that thread falls behind:
    // every 16,384 pages (64 MB of WAL, the most the WAL file grows to under sustained load).
    this.db.pragma('wal_autocheckpoint = 16384');
    // Another process writing the same file (a CLI, a second instance) waits its turn instead of failing.
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    migrate(this.db);
    this.checkpointer = new Checkpointer(file);

    const db = this.db;
    this.statements = {
      insertJob: db.prepare(
        'INSERT INTO jobs (id, status, owner, queue_key, merge_key, created_at, ended_at, parent, root, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      waitingOf: db.prepare<[string], { n: number }>("SELECT COUNT(*) AS n FROM jobs WHERE queue_key = ? AND status = 'waiting'"),
      updateJob: db.prepare('UPDATE jobs SET status = ?, ended_at = ?, record = ? WHERE id = ?'),
      // Most appends leave a running job running: SQLite rewrites the index entries of every column
      // an UPDATE sets, changed or not (jobs_by_status and the partial indexes on status).
      updateRecord: db.prepare('UPDATE jobs SET record = ? WHERE id = ?'),
      getJob: db.prepare<[string], { record: string }>('SELECT record FROM jobs WHERE id = ?'),
      dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(),
      activeByMergeKey: db.prepare<[string], { record: string }>(
        "SELECT record FROM jobs WHERE merge_key = ? AND status IN ('waiting', 'running')",
      ),
      insertEvent: db.prepare('INSERT INTO events (job_id, seq, event) VALUES (?, ?, ?)'),
      eventsAfter: db.prepare<[string, number], { event: string }>('SELECT event FROM events WHERE job_id = ? AND seq > ? ORDER BY seq'),
      insertCredentials: db.prepare('INSERT INTO credentials (job_id, sealed) VALUES (?, ?)'),
      getCredentials: db.prepare<[string], { sealed: string }>('SELECT sealed FROM credentials WHERE job_id = ?'),
      deleteCredentials: db.prepare('DELETE FROM credentials WHERE job_id = ?'),
      insertSecret: db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('secret', ?)"),
      getSecret: db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'secret'"),
    };

    const s = this.statements;
    // IMMEDIATE transactions take the write lock up front, so the read-fold-write
    // of a job cannot interleave with another process's writer.
    this.createJob = db.transaction((job: NewJob, maxWaiting: number): { job: JobRecord; merged: boolean } => {
      if (job.mergeKey !== null) {
        const existing = s.activeByMergeKey.get(job.mergeKey);
        if (existing) return { job: JSON.parse(existing.record) as JobRecord, merged: true };
      }
      const queueKey = queueKeyOf(job);
      if (maxWaiting > 0 && s.waitingOf.get(queueKey)!.n >= maxWaiting) throw overQuota(maxWaiting);
      const { record, event } = createRecord(job);
      const { parent = null, root = null } = record;
      const json = JSON.stringify(record);
      s.insertJob.run(record.id, record.status, record.owner, queueKey, record.mergeKey, record.createdAt, null, parent, root, json);
      s.insertEvent.run(record.id, event.seq, JSON.stringify(event));
      if (job.credentials !== undefined) s.insertCredentials.run(record.id, job.credentials);
      // Through JSON, so the caller sees exactly what a later `get` returns.
      return { job: JSON.parse(json) as JobRecord, merged: false };
    });

    this.appendBatch = db.transaction(
      (batch: Array<{ jobId: string; events: JobEventData[]; runner?: string | null }>, at: number): AppendResult[] => {
        // Another connection committed since this one's last look: the rows held may be stale.
        const version = s.dataVersion.get()!;
        if (version !== this.rowsVersion) {
          this.rows.clear();
          this.rowsVersion = version;
        }
        return batch.map(({ jobId, events, runner }) => {
          let current = this.rows.get(jobId);
          if (!current) {
            const row = s.getJob.get(jobId);
            if (!row) return { events: [], job: null };
            current = JSON.parse(row.record) as JobRecord;
          }
          const { record, stored } = appendToRecord(current, events, runner, at);
          if (stored.length === 0) return { events: [], job: current };
          if (stored.length === 1) s.insertEvent.run(jobId, stored[0]!.seq, JSON.stringify(stored[0]));
          else {
            // The events as reported (what `appendToRecord` kept of them is a prefix), one `at` for all.
            for (let i = 0; i < stored.length; i += EVENTS_PER_ROW) {
              const run = events.slice(i, Math.min(stored.length, i + EVENTS_PER_ROW));
              const lines = run.every((event) => event.type === 'job:log') ? run.map((event) => (event as { line: string }).line) : undefined;
              const row: StoredRun = lines ? { seq: stored[i]!.seq, at, lines } : { seq: stored[i]!.seq, at, events: run };
              s.insertEvent.run(jobId, row.seq + run.length - 1, JSON.stringify(row));
            }
          }
          const json = JSON.stringify(record);
          if (record.status === current.status && record.endedAt === current.endedAt) s.updateRecord.run(json, jobId);
          else s.updateJob.run(record.status, record.endedAt ?? null, json, jobId);
          if (isEnded(record.status)) s.deleteCredentials.run(jobId);
          // What the caller gets is what a later read returns. The fold made fresh objects, and
          // for the events of a flood (log lines, progress, a start) those hold only strings and
          // numbers: JSON would give them back as they are. Anything else goes through JSON.
          const plain = stored.every(isPlainEvent);
          const job = plain ? record : (JSON.parse(json) as JobRecord);
          if (isEnded(job.status)) this.rows.delete(jobId);
          else this.rows.set(jobId, job);
          return { events: plain ? stored : stored.map((event) => JSON.parse(JSON.stringify(event)) as JobEvent), job };
        });
      },
    );

    this.deleteOld = db.transaction((completedBefore: number | null, endedBefore: number | null): number => {
      // Roots past the cutoffs (a child goes with its root, never alone) whose family has no live member.
      const roots = `SELECT id FROM jobs AS r WHERE r.root IS NULL AND r.status IN (${ENDED_LIST}) AND r.ended_at IS NOT NULL AND (
        (? IS NOT NULL AND r.status = 'completed' AND r.ended_at < ?) OR (? IS NOT NULL AND r.ended_at < ?))
        AND NOT EXISTS (SELECT 1 FROM jobs AS d WHERE d.root = r.id AND d.status NOT IN (${ENDED_LIST}))`;
      const args = [completedBefore, completedBefore, endedBefore, endedBefore];
      db.exec('CREATE TEMP TABLE IF NOT EXISTS doomed (id TEXT PRIMARY KEY) WITHOUT ROWID');
      db.exec('DELETE FROM temp.doomed');
      db.prepare(`INSERT INTO temp.doomed (id) ${roots}`).run(...args);
      db.prepare('INSERT OR IGNORE INTO temp.doomed (id) SELECT id FROM jobs WHERE root IN (SELECT id FROM temp.doomed)').run();
      db.prepare('DELETE FROM events WHERE job_id IN (SELECT id FROM temp.doomed)').run();
      db.prepare('DELETE FROM credentials WHERE job_id IN (SELECT id FROM temp.doomed)').run();
      const deleted = db.prepare('DELETE FROM jobs WHERE id IN (SELECT id FROM temp.doomed)').run().changes;
      db.exec('DELETE FROM temp.doomed');
      return deleted;
    });
  }

  async create(job: NewJob, options: { maxWaiting?: number } = {}): Promise<{ job: JobRecord; merged: boolean }> {
    const created = this.createJob.immediate(job, options.maxWaiting ?? 0);
    this.checkpointer.committed();
    return created;
  }

  async append(batch: Array<{ jobId: string; events: JobEventData[]; runner?: string | null }>): Promise<AppendResult[]> {
    try {
      const results = this.appendBatch.immediate(batch, Date.now());
      this.checkpointer.committed();
      return results;
    } catch (error) {
      // Rolled back: the rows held may be ahead of the file.
      this.rows.clear();
      throw error;
    }
  }

  async get(id: string): Promise<JobRecord | null> {
    const row = this.statements.getJob.get(id);
    return row ? (JSON.parse(row.record) as JobRecord) : null;
  }

  async eventsAfter(id: string, afterSeq: number, limit: number): Promise<JobEvent[]> {
    const events: JobEvent[] = [];
    if (limit <= 0) return events;
    // A row keyed by seq N holds event N, or a run of events ending at N: the rows after
    // `afterSeq` are exactly those holding any event after it, and reading stops at `limit`.
    for (const row of this.statements.eventsAfter.iterate(id, afterSeq)) {
      const value = JSON.parse(row.event) as JobEvent | StoredRun;
      if ('type' in value) {
        events.push(value);
        if (events.length === limit) return events;
        continue;
      }
      const { seq, at } = value;
      const length = 'lines' in value ? value.lines.length : value.events.length;
      for (let i = Math.max(0, afterSeq + 1 - seq); i < length; i++) {
        const data = 'lines' in value ? { type: 'job:log' as const, line: value.lines[i]! } : value.events[i]!;
        events.push({ ...data, jobId: id, seq: seq + i, at } as JobEvent);
        if (events.length === limit) return events;
      }
    }
    return events;
  }

  async list(filter: ListFilter): Promise<JobRecord[]> {
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (filter.owner === null) where.push('owner IS NULL');
    else if (filter.owner !== undefined) {
      where.push('owner = ?');
      args.push(filter.owner);
    }
    if (filter.parent === null) where.push('parent IS NULL');
    else if (filter.parent !== undefined) {
      where.push('parent = ?');
      args.push(filter.parent);
    }
    if (filter.status !== undefined) {
      const statuses = [filter.status].flat();
      where.push(`status IN (${statuses.map(() => '?').join(', ')})`);
      args.push(...statuses);
    }
    if (filter.before) {
      // The page after the cursor's job, in the order below; when it is gone, after its creation time.
      // `created_at <= ?` on its own is what lets SQLite seek the index to the cursor: an OR alone
      // would make it walk down from the newest job, so a deep page would cost the pages before it.
      where.push('created_at <= ? AND (created_at < ? OR rowid < COALESCE((SELECT rowid FROM jobs WHERE id = ?), 0))');
      args.push(filter.before.createdAt, filter.before.createdAt, filter.before.id);
    }
    let sql = 'SELECT record FROM jobs';
    if (where.length) sql += ` WHERE ${where.join(' AND ')}`;
    // rowid breaks ties between jobs created in the same millisecond: later insert, newer.
    sql += ' ORDER BY created_at DESC, rowid DESC';
    if (filter.limit !== undefined) {
      sql += ' LIMIT ?';
      args.push(filter.limit);
    }
    const rows = this.db.prepare<unknown[], { record: string }>(sql).all(...args);
    return rows.map((row) => JSON.parse(row.record) as JobRecord);
  }

  async takeCredentials(id: string): Promise<string | null> {
    return this.db.transaction(() => {
      const row = this.statements.getCredentials.get(id);
      if (row) this.statements.deleteCredentials.run(id);
      return row?.sealed ?? null;
    }).immediate();
  }

  async deleteEnded(opts: { completedBefore?: number; endedBefore?: number }): Promise<number> {
    if (opts.completedBefore === undefined && opts.endedBefore === undefined) return 0;
    const deleted = this.deleteOld.immediate(opts.completedBefore ?? null, opts.endedBefore ?? null);
    // A sweep can free thousands of pages: checkpoint them too, rather than wait for the next job's commit.
    if (deleted > 0) this.checkpointer.committed();
    return deleted;
  }

  async secret(): Promise<string> {
    this.statements.insertSecret.run(randomBytes(32).toString('base64url'));
    return this.statements.getSecret.get()!.value;
  }

  /** Jobs left running: with one process per file, all of them are orphans at start-up. */
  async running(): Promise<JobRecord[]> {
    return this.list({ status: 'running' });
  }

  async close(): Promise<void> {
    await this.checkpointer.close();
    if (this.db.open) this.db.close();
  }
}

/** Options of {@link sqlite}. */
export interface SqliteOptions {
  /** Database file. Default `backjob.db` in the working directory. */
  file?: string;
  /**
   * Seconds a process that runs jobs waits at start-up for another process
   * running the same file's jobs to stop (a restart that overlaps the old
   * process's shutdown), before `ready` rejects with `BACKJOB_ERR_IN_USE`.
   * Default 10; 0 refuses at once.
   */
  lockTimeout?: number;
}

/** The default of {@link SqliteOptions.lockTimeout}: longer than Docker's and PM2's grace before they kill the old process. */
const LOCK_TIMEOUT_S = 10;

/**
 * The embedded default backend: an SQLite file (WAL) that keeps jobs and
 * their events across restarts. Jobs run in this process, and in no other
 * at the same time (see `run-lock.ts`): a second process that runs jobs
 * waits for the first to stop.
 */
export function sqlite(options: SqliteOptions = {}): Backend {
  const lockTimeout = nonNegativeOption('lockTimeout', options.lockTimeout ?? LOCK_TIMEOUT_S, 'number of seconds');
  const file = options.file ?? join(process.cwd(), 'backjob.db');
  const store = new SqliteStore(file);
  const lock = new RunLock(file, lockTimeout * 1000);
  const backend = localBackend('sqlite', store, () => store.running());
  return {
    ...backend,
    lockRunner: (signal) => lock.take(signal),
    async close() {
      try {
        await backend.close();
      } finally {
        // Only once everything this process wrote is in the file may the next one take over.
        lock.release();
      }
    },
  };
}
