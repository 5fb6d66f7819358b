/**
 * What the benches share, built only on BackJob's public API (createBackJob,
 * define, start, attach, the wire protocol), so they measure the same thing
 * whatever the server's insides look like: a BackJob behind a real http
 * server, jobs a bench drives by hand, a private redis-server, the socket
 * child, percentiles and a shared clock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createBackJob } from '../server/index.js';
import type { AttachOptions, BackJob, BackJobOptions, JobContext } from '../server/types.js';

/** One measured figure of a suite (what `npm run bench` prints a row of). */
export interface Figure {
  name: string;
  value: number;
  unit: string;
}

export const KEY = 'bench-key-0123456789abcdefghij';

/** `BENCH_QUICK=1`: smaller sizes, so the whole bench takes a few minutes. */
export const QUICK = process.env.BENCH_QUICK === '1';

/** Milliseconds since the epoch, sub-millisecond, comparable across this machine's processes. */
export const clock = (): number => performance.timeOrigin + performance.now();

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export const median = (values: number[]): number => percentile(values, 50);

export const round = (n: number, digits = 2): number => Number(n.toFixed(digits));

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
export const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

type Falsy = undefined | null | false;

export async function waitFor<T>(probe: () => T | Falsy | Promise<T | Falsy>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** A job whose handler waits until the bench ends it; the bench reports through `job`. */
export interface ManualJob {
  id: string;
  token: string;
  job: JobContext;
  finish(): void;
}

/** A BackJob with its live channel on a real port, as an app attaches it. */
export interface BenchServer {
  backjob: BackJob;
  server: Server;
  /** `ws://127.0.0.1:<port>/backjob/ws` */
  wsUrl: string;
  manual(): Promise<ManualJob>;
  close(): Promise<void>;
}

export async function startBackJobServer(options: Partial<BackJobOptions> = {}, attach: AttachOptions = {}): Promise<BenchServer> {
  const backjob = createBackJob({ key: KEY, merge: false, ...options });
  const running = new Map<string, { job: JobContext; finish: () => void }>();
  backjob.define('manual', (job) => new Promise<void>((finish) => running.set(job.id, { job, finish })));
  await backjob.ready;
  const server = createServer((_req, res) => res.writeHead(404).end());
  backjob.attach(server, { rateLimit: 1_000_000, ...attach });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    backjob,
    server,
    wsUrl: `ws://127.0.0.1:${port}${options.basePath ?? '/backjob'}/ws`,
    async manual() {
      const { id, token } = await backjob.start({ name: 'manual' });
      const { job, finish } = await waitFor(() => running.get(id), `job ${id} to start`);
      return { id, token, job, finish };
    },
    async close() {
      for (const { finish } of running.values()) finish();
      server.closeAllConnections();
      await backjob.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ───────────────────────────── the socket child ─────────────────────────────

/** What the socket child is told to open (see bench/sockets.ts). */
export interface SocketsSpec {
  url: string;
  /** `backjob`: the wire protocol, subscribing to `job`; `glue`: a plain ws server's frames. */
  protocol: 'backjob' | 'glue';
  sockets: number;
  job?: string;
  token?: string;
  /** Subscribe after this seq (resume); default from the start. */
  after?: number;
  /** Items (log lines or progress texts) numbered 0…last; the child reports once every socket has item `last`. */
  last: number;
  /**
   * Report only counts and first/last arrivals, not per-item times: for a
   * replay of a million lines, whose per-item arrays would otherwise land in
   * the measured process's heap.
   */
  countsOnly?: boolean;
}

/** What the socket child sends once every socket has the last item. */
export interface RawReport {
  /** Per item: when the last socket had it (or a later item merged over it); 0 if some socket never did. Empty with `countsOnly`. */
  arrivals: number[];
  /** Per item: the clock it was stamped with (0: it never arrived, merged into a later one). */
  stamps: number[];
  /** Items the first socket received (fewer than last + 1 when progress was merged). */
  received: number;
  /** Clock of the first and the last arrival. */
  firstArrival: number;
  lastArrival: number;
  /** Clock when the first socket sent its subscribe. */
  asked: number;
  /** CPU time the child spent from 'ready' to this report, user and kernel, µs. */
  cpu: { user: number; system: number };
}

export interface SocketsReport {
  /** Per item every socket got: the latest arrival across sockets minus the time it was sent, ms. */
  spans: number[];
  received: number;
  firstArrival: number;
  lastArrival: number;
  asked: number;
  /** The sockets' CPU time from 'ready' to the report, user and kernel, µs. */
  cpu: { user: number; system: number };
}

/** A child process holding many client sockets, so they cost the server's process nothing (and get their own fds and core). */
export interface SocketsChild {
  /**
   * Resolves once every socket has the last item. Spans are timed from
   * `sentAt[i]` when given (items merged away carry no stamp of their own),
   * else from each item's stamp.
   */
  report(sentAt?: number[]): Promise<SocketsReport>;
  close(): Promise<void>;
}

const here = fileURLToPath(new URL('.', import.meta.url));

/** A report that takes longer than this is a hang (an item lost), not a slow run. */
const REPORT_TIMEOUT_MS = 180_000;

/** Spawns `bench/sockets.ts`; resolves once every socket is open and subscribed. */
export async function openSockets(spec: SocketsSpec): Promise<SocketsChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'sockets.ts')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`socket child exited with ${code}`);
  });
  exited.catch(() => {});
  child.send(spec);
  const message = (type: string) =>
    Promise.race([
      new Promise<any>((resolve) => {
        const on = (m: any) => {
          if (m?.type === type) {
            child.off('message', on);
            resolve(m);
          }
        };
        child.on('message', on);
      }),
      exited,
    ]);
  const ready = message('ready');
  const done = message('report');
  done.catch(() => {});
  await ready;
  // The child's clock may sit a fraction of a millisecond off this one: learn by how much from the
  // quickest of a few pings (half its round trip either way), and read its times on this clock.
  let offset = 0;
  let best = Infinity;
  for (let i = 0; i < 10; i++) {
    const sent = clock();
    child.send({ type: 'ping' });
    const { at } = await message('pong');
    const back = clock();
    if (back - sent < best) [best, offset] = [back - sent, at - (sent + back) / 2];
  }
  return {
    async report(sentAt) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the sockets did not all get item ${spec.last} within ${REPORT_TIMEOUT_MS / 1000} s`)), REPORT_TIMEOUT_MS);
      });
      const { arrivals, stamps, received, firstArrival, lastArrival, asked, cpu } = (await Promise.race([done, late]).finally(() => clearTimeout(timer)))
        .report as RawReport;
      const spans: number[] = [];
      arrivals.forEach((at, i) => {
        const sent = sentAt?.[i] ?? stamps[i]!;
        if (at > 0 && sent > 0) spans.push(at - offset - sent);
      });
      return { spans, received, firstArrival: firstArrival - offset, lastArrival: lastArrival - offset, asked: asked - offset, cpu };
    },
    close: () => stopChild(child),
  };
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = once(child, 'exit');
  child.kill('SIGTERM');
  await gone;
}

// ───────────────────────────── redis ─────────────────────────────

export interface BenchRedis {
  url: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A private redis-server (on PATH) with AOF, `appendfsync everysec`, in a temp dir. */
export async function startRedis(): Promise<BenchRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'backjob-bench-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', ''];
  const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 20_000);
    proc.stdout!.on('data', (chunk: Buffer) => {
      output += chunk;
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        proc.stdout!.removeAllListeners('data');
        proc.stdout!.resume();
        resolve();
      }
    });
    proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}:\n${output}`)));
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      await stopChild(proc);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
