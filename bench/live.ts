/**
 * The live path over real sockets on loopback, each figure beside the
 * hand-written glue doing the same work in the same run (bench/glue.ts: a
 * plain `ws` server with no store). BackJob runs on SQLite in a temp dir; the
 * watchers live in a child process (bench/sockets.ts) so they neither share
 * the server's fds nor its core, for both stacks alike.
 *
 * - flood: one job logging N lines to one watcher, stored and delivered,
 *   against the glue sending the same lines from memory one frame each;
 * - the same flood paced with `flush()` every 100 lines: line → watcher p99;
 * - update → watcher latency at a steady 1,000 updates/s;
 * - fan-out: one job watched by 1,000 (and 10,000) sockets at 10 updates/s,
 *   update → every socket, against the glue's broadcast; at 10,000, the CPU
 *   each side spends per update, and the floor: bare TCP writes, no
 *   WebSocket at all (bench/tcp-floor.ts);
 * - memory per idle subscribed socket (server process, after GC).
 *
 * Standalone: `npx tsx bench/live.ts`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sqlite } from '../server/index.js';
import { startGlue } from './glue.js';
import { tcpFloor } from './tcp-floor.js';
import { QUICK, clock, openSockets, percentile, round, sleep, startBackJobServer, stopChild, yieldToLoop, type BenchServer } from './kit.js';
import type { Figure } from './kit.js';

const PAD = 'of the benchmark log, about as long as a real line is';
const line = (i: number) => `${i} ${clock()} ${PAD}`;

export interface FloodResult {
  /** Lines per second, from the first line to the last one stored (BackJob) and delivered. */
  rate: number;
}

/** BackJob: one job logs `lines` lines (yielding every 1,000); done when all are stored and the watcher has the last. */
export async function floodBackJob(live: BenchServer, lines: number): Promise<FloodResult> {
  const job = await live.manual();
  const watcher = await openSockets({ url: live.wsUrl, protocol: 'backjob', sockets: 1, job: job.id, token: job.token, last: lines - 1 });
  try {
    const began = clock();
    for (let i = 0; i < lines; i++) {
      job.job.log(line(i));
      if (i % 1000 === 999) await yieldToLoop();
    }
    await job.job.flush();
    const stored = clock();
    const report = await watcher.report();
    if (report.received !== lines) throw new Error(`the watcher got ${report.received} of ${lines} lines`);
    return { rate: lines / ((Math.max(stored, report.lastArrival) - began) / 1000) };
  } finally {
    job.finish();
    await watcher.close();
  }
}

/** The glue: the same lines from memory, one frame each, to one watcher. */
export async function floodGlue(lines: number): Promise<FloodResult> {
  const glue = await startGlue();
  const watcher = await openSockets({ url: glue.url, protocol: 'glue', sockets: 1, last: lines - 1 });
  try {
    const began = clock();
    await glue.flood(lines, line);
    const report = await watcher.report();
    return { rate: lines / ((report.lastArrival - began) / 1000) };
  } finally {
    await watcher.close();
    await glue.close();
  }
}

/** BackJob: `lines` lines, `flush()` awaited after every `pace`: line → watcher p50/p99. */
async function pacedFlood(live: BenchServer, lines: number, pace: number): Promise<{ p50: number; p99: number; rate: number }> {
  const job = await live.manual();
  const watcher = await openSockets({ url: live.wsUrl, protocol: 'backjob', sockets: 1, job: job.id, token: job.token, last: lines - 1 });
  try {
    const began = clock();
    for (let i = 0; i < lines; i++) {
      job.job.log(line(i));
      if (i % pace === pace - 1) await job.job.flush();
    }
    const { spans, lastArrival } = await watcher.report();
    return { p50: percentile(spans, 50), p99: percentile(spans, 99), rate: lines / ((lastArrival - began) / 1000) };
  } finally {
    job.finish();
    await watcher.close();
  }
}

/** Steady 1,000 updates/s for `seconds` to one watcher; progress is latest-wins, so some arrive merged. */
async function updateLatency(live: BenchServer, seconds: number): Promise<Figure[]> {
  const total = seconds * 1000;
  const job = await live.manual();
  const watcher = await openSockets({ url: live.wsUrl, protocol: 'backjob', sockets: 1, job: job.id, token: job.token, last: total - 1 });
  try {
    const start = clock();
    let sent = 0;
    while (sent < total) {
      // Timers wake about once a millisecond: send whatever became due since the last wake.
      const due = Math.min(total, Math.floor(clock() - start));
      for (; sent < due; sent++) job.job.update({ progress: (sent / total) * 100, text: `${sent} ${clock()}` });
      await sleep(1);
    }
    const { spans } = await watcher.report();
    return [
      { name: 'update → watcher latency p50 (1,000 updates/s)', value: round(percentile(spans, 50)), unit: 'ms' },
      { name: 'update → watcher latency p99 (1,000 updates/s)', value: round(percentile(spans, 99)), unit: 'ms' },
      { name: 'updates that reached the watcher unmerged (1,000 updates/s)', value: Math.round((spans.length / total) * 100), unit: '%' },
    ];
  } finally {
    job.finish();
    await watcher.close();
  }
}

export interface FanOutResult {
  p50: number;
  p99: number;
  /** Share of the updates the first socket got as their own event (the rest were merged into later ones: progress is latest-wins). */
  unmerged: number;
  /**
   * CPU per update, ms, from the first update to the last socket having the
   * last one: the server's process (`kernel` of it: the sockets' sends, which
   * on loopback carry the receiving side's TCP work too) and the watchers'.
   */
  cpu: { server: number; kernel: number; watchers: number };
}

/** CPU time of `report`'s phase per update, ms (see {@link FanOutResult.cpu}). */
function cpuPerUpdate(server: NodeJS.CpuUsage, watchers: { user: number; system: number }, updates: number): FanOutResult['cpu'] {
  const ms = (us: number) => us / 1000 / updates;
  return { server: ms(server.user + server.system), kernel: ms(server.system), watchers: ms(watchers.user + watchers.system) };
}

/** `updates` updates at `perSecond`, each stamped; per update, the time until the last socket had it. */
async function paced(send: (text: string) => void, updates: number, perSecond: number): Promise<number[]> {
  const sentAt: number[] = [];
  const start = clock();
  for (let i = 0; i < updates; i++) {
    const due = start + (i * 1000) / perSecond;
    while (clock() < due) await sleep(Math.max(0, Math.min(5, due - clock())));
    sentAt[i] = clock();
    send(`${i} ${sentAt[i]}`);
  }
  return sentAt;
}

/** BackJob: one job watched by `sockets` sockets. */
export async function fanOutBackJob(live: BenchServer, sockets: number, updates: number, perSecond = 10): Promise<FanOutResult> {
  const job = await live.manual();
  const watchers = await openSockets({ url: live.wsUrl, protocol: 'backjob', sockets, job: job.id, token: job.token, last: updates - 1 });
  try {
    const cpu = process.cpuUsage();
    const sentAt = await paced((text) => job.job.update({ text }), updates, perSecond);
    const { spans, received, cpu: watcherCpu } = await watchers.report(sentAt);
    return { p50: percentile(spans, 50), p99: percentile(spans, 99), unmerged: received / updates, cpu: cpuPerUpdate(process.cpuUsage(cpu), watcherCpu, updates) };
  } finally {
    job.finish();
    await watchers.close();
  }
}

/** The glue: the same frames broadcast by a ws server to `sockets` sockets. */
export async function fanOutGlue(sockets: number, updates: number, perSecond = 10): Promise<FanOutResult> {
  const glue = await startGlue();
  const watchers = await openSockets({ url: glue.url, protocol: 'glue', sockets, last: updates - 1 });
  try {
    const cpu = process.cpuUsage();
    const sentAt = await paced((text) => glue.broadcast('progress', text), updates, perSecond);
    const { spans, received, cpu: watcherCpu } = await watchers.report(sentAt);
    return { p50: percentile(spans, 50), p99: percentile(spans, 99), unmerged: received / updates, cpu: cpuPerUpdate(process.cpuUsage(cpu), watcherCpu, updates) };
  } finally {
    await watchers.close();
    await glue.close();
  }
}

const here = fileURLToPath(new URL('.', import.meta.url));

/** Server memory per idle socket (BackJob: subscribed to a running job), in a child run with `--expose-gc`. */
async function idleMemory(kind: 'backjob' | 'glue', sockets: number): Promise<{ heap: number; rss: number }> {
  const server = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, 'idle-memory.ts'), kind], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = (type: string) => new Promise<any>((resolve) => {
    const on = (m: any) => {
      if (m?.type !== type) return;
      server.off('message', on);
      resolve(m);
    };
    server.on('message', on);
  });
  try {
    const listening = await next('listening');
    // The first socket loads the code paths a socket uses: measure from there.
    const warm = await openSockets({ url: listening.url, protocol: kind, sockets: 1, job: listening.job, token: listening.token, last: 1 });
    server.send({ type: 'measure' });
    const before = await next('memory');
    const idle = await openSockets({ url: listening.url, protocol: kind, sockets, job: listening.job, token: listening.token, last: 1 });
    await sleep(200);
    server.send({ type: 'measure' });
    const after = await next('memory');
    await idle.close();
    await warm.close();
    return { heap: (after.heap - before.heap) / sockets, rss: (after.rss - before.rss) / sockets };
  } finally {
    server.send({ type: 'exit' });
    await stopChild(server);
  }
}

const kb = (bytes: number) => round(bytes / 1024, 1);

/** Runs the live benchmarks. */
export async function benchLive(): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'backjob-bench-live-'));
  const live = await startBackJobServer({ backend: sqlite({ file: join(dir, 'bench.db') }), maxLogLines: 2_000_000, concurrency: 10 });
  const lines = QUICK ? 30_000 : 100_000;
  const updates = QUICK ? 30 : 100;
  const figures: Figure[] = [];
  try {
    // Neither stack is measured cold.
    await floodGlue(5_000);
    await floodBackJob(live, 5_000);
    const glue = await floodGlue(lines);
    const ours = await floodBackJob(live, lines);
    figures.push(
      { name: `flood ${lines.toLocaleString('en-US')} lines, 1 watcher: BackJob (SQLite, stored + delivered)`, value: Math.round(ours.rate), unit: 'lines/s' },
      { name: `flood: glue (ws, one frame per line, from memory)`, value: Math.round(glue.rate), unit: 'lines/s' },
      { name: `flood: ratio BackJob/glue (target ≥ 3)`, value: round(ours.rate / glue.rate), unit: '×' },
    );
    const pace = await pacedFlood(live, QUICK ? 10_000 : 30_000, 100);
    figures.push(
      { name: `flood paced by flush() every 100 lines: line → watcher p50`, value: round(pace.p50), unit: 'ms' },
      { name: `flood paced by flush() every 100 lines: line → watcher p99 (target ≤ 20)`, value: round(pace.p99), unit: 'ms' },
      { name: `flood paced by flush() every 100 lines: rate`, value: Math.round(pace.rate), unit: 'lines/s' },
    );
    figures.push(...(await updateLatency(live, QUICK ? 3 : 5)));
    await fanOutGlue(100, 5);
    await fanOutBackJob(live, 100, 5);
    const glueFan = await fanOutGlue(1000, updates);
    const ourFan = await fanOutBackJob(live, 1000, updates);
    figures.push(
      { name: `fan-out 1,000 sockets, 10 updates/s: BackJob update → all p50`, value: round(ourFan.p50), unit: 'ms' },
      { name: `fan-out 1,000 sockets: BackJob p99`, value: round(ourFan.p99), unit: 'ms' },
      { name: `fan-out 1,000 sockets: glue broadcast p50`, value: round(glueFan.p50), unit: 'ms' },
      { name: `fan-out 1,000 sockets: glue broadcast p99`, value: round(glueFan.p99), unit: 'ms' },
      { name: `fan-out 1,000 sockets: p99 ratio BackJob/glue (target ≤ 1)`, value: round(ourFan.p99 / glueFan.p99), unit: '×' },
    );
    const big = 10_000;
    const glueBig = await fanOutGlue(big, QUICK ? 20 : 50);
    const ourBig = await fanOutBackJob(live, big, QUICK ? 20 : 50);
    figures.push(
      { name: `fan-out 10,000 sockets, 10 updates/s: BackJob p50`, value: round(ourBig.p50), unit: 'ms' },
      { name: `fan-out 10,000 sockets: BackJob p99 (target ≤ 100)`, value: round(ourBig.p99), unit: 'ms' },
      { name: `fan-out 10,000 sockets: updates a socket got unmerged`, value: Math.round(ourBig.unmerged * 100), unit: '%' },
      { name: `fan-out 10,000 sockets: glue p99`, value: round(glueBig.p99), unit: 'ms' },
      { name: `fan-out 10,000 sockets: p99 ratio BackJob/glue`, value: round(ourBig.p99 / glueBig.p99), unit: '×' },
      // Why p99 ≤ 100 ms is out of reach here: at 10 updates/s two cores have 200 ms of CPU per update
      // for the server and the watchers together, and bare TCP writes alone (the floor below) take most of it.
      { name: `fan-out 10,000 sockets: BackJob's process CPU per update`, value: round(ourBig.cpu.server), unit: 'ms' },
      { name: `fan-out 10,000 sockets: of it in the kernel (loopback sends)`, value: round(ourBig.cpu.kernel), unit: 'ms' },
      { name: `fan-out 10,000 sockets: glue's process CPU per update`, value: round(glueBig.cpu.server), unit: 'ms' },
      { name: `fan-out 10,000 sockets: BackJob's watchers' CPU per update`, value: round(ourBig.cpu.watchers), unit: 'ms' },
      { name: `fan-out 10,000 sockets: glue's watchers' CPU per update`, value: round(glueBig.cpu.watchers), unit: 'ms' },
    );
    const floor = await tcpFloor(big);
    figures.push(
      { name: `fan-out 10,000 sockets: bare TCP (no WebSocket), one 100-byte write to each: all read`, value: round(floor.allRead), unit: 'ms' },
      { name: `fan-out 10,000 sockets: bare TCP: the writer's CPU`, value: round(floor.cpu), unit: 'ms' },
      { name: `fan-out 10,000 sockets: bare TCP: the writer's kernel CPU`, value: round(floor.kernel), unit: 'ms' },
    );
  } finally {
    await live.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const idle = QUICK ? 1000 : 2000;
  const ourMem = await idleMemory('backjob', idle);
  const glueMem = await idleMemory('glue', idle);
  figures.push(
    { name: `memory per idle subscribed socket (${idle} sockets): BackJob heap + external`, value: kb(ourMem.heap), unit: 'KiB' },
    { name: `memory per idle socket: BackJob RSS`, value: kb(ourMem.rss), unit: 'KiB' },
    { name: `memory per idle socket: glue heap + external`, value: kb(glueMem.heap), unit: 'KiB' },
    { name: `memory per idle socket: glue RSS`, value: kb(glueMem.rss), unit: 'KiB' },
  );
  return figures;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const { name, value, unit } of await benchLive()) console.log(`${name.padEnd(80)} ${String(value).padStart(10)} ${unit}`);
}
