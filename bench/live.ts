/**
 * The live path, measured end to end over real sockets on loopback: a job
 * reports through its context, the store commits, the bus fans out, the hub
 * sends, a `ws` client parses the frame.
 *
 * - latency from `job.update()` to a watcher receiving it, at a steady
 *   1,000 updates/s (p50, p99);
 * - log lines per second delivered from one job to one watcher;
 * - one job watched by 1,000 sockets: time for an update to reach them all.
 *
 * Runs on the SQLite backend (the default) in a temp dir. Standalone:
 * `npx tsx bench/live.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { ServerMessage } from '../shared/protocol.js';
import { sqlite } from '../server/index.js';
import { LiveServer, TestClient, waitFor } from '../server/testing/live-test-kit.js';

/** One measured figure. */
export interface LiveFigure {
  name: string;
  value: number;
  unit: string;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/** Calls `onEvent` for each event of `job` a client receives, with the receive time. */
function onEvents(client: TestClient, job: string, onEvent: (event: Extract<ServerMessage, { type: 'events' }>['events'][number], at: number) => void): void {
  client.ws.on('message', (data) => {
    const at = performance.now();
    const message = JSON.parse(data.toString()) as ServerMessage;
    if (message.type === 'events' && message.job === job) for (const event of message.events) onEvent(event, at);
  });
}

async function subscribed(live: LiveServer, id: string, token: string): Promise<TestClient> {
  const client = await TestClient.open(live.url);
  client.send({ type: 'subscribe', job: id, token });
  await client.next((m) => m.type === 'snapshot', 'snapshot');
  return client;
}

/** Steady 1,000 updates/s for `seconds`; each update carries its index in `text`. */
async function updateLatency(live: LiveServer, seconds: number): Promise<LiveFigure[]> {
  const job = await live.manual();
  const client = await subscribed(live, job.id, job.token);
  const sentAt: number[] = [];
  const latencies: number[] = [];
  let lastArrived = -1;
  // Progress is latest-wins: updates reported between two writes arrive merged into the last of
  // them, so each event's latency is measured from the update whose value it carries.
  onEvents(client, job.id, (event, at) => {
    if (event.type !== 'job:progress' || event.text === undefined) return;
    lastArrived = Number(event.text);
    latencies.push(at - sentAt[lastArrived]!);
  });
  const total = seconds * 1000;
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    // Timers wake about once a millisecond: send whatever became due since the last wake.
    const due = Math.min(total, Math.floor(performance.now() - start));
    for (; sent < due; sent++) {
      sentAt[sent] = performance.now();
      job.job.update({ progress: (sent / total) * 100, text: String(sent) });
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await waitFor(() => lastArrived === total - 1, 'the last update to arrive', 60_000);
  job.finish();
  await client.close();
  latencies.sort((a, b) => a - b);
  return [
    { name: 'update → watcher latency p50 (1,000 updates/s)', value: round(percentile(latencies, 50)), unit: 'ms' },
    { name: 'update → watcher latency p99 (1,000 updates/s)', value: round(percentile(latencies, 99)), unit: 'ms' },
    { name: 'updates that reached the watcher unmerged (1,000 updates/s)', value: Math.round((latencies.length / total) * 100), unit: '%' },
  ];
}

/** As many log lines as one job can write, measured at the watcher. */
async function logThroughput(live: LiveServer, lines: number): Promise<LiveFigure[]> {
  const job = await live.manual();
  const client = await subscribed(live, job.id, job.token);
  let received = 0;
  let lastAt = 0;
  onEvents(client, job.id, (event, at) => {
    if (event.type === 'job:log') {
      received++;
      lastAt = at;
    }
  });
  const start = performance.now();
  for (let i = 0; i < lines; i++) {
    job.job.log(`line ${i} of the benchmark log, about as long as a real one`);
    if (i % 1000 === 999) await job.job.flush(); // a real handler does work between lines
  }
  await waitFor(() => received === lines, 'every line to arrive', 120_000);
  job.finish();
  await client.close();
  return [{ name: 'log lines delivered to one watcher', value: Math.round(lines / ((lastAt - start) / 1000)), unit: 'lines/s' }];
}

/** One job, `sockets` watchers; `updates` updates spaced out; time until the last socket has each. */
async function fanOut(live: LiveServer, sockets: number, updates: number): Promise<LiveFigure[]> {
  const job = await live.manual();
  const clients: TestClient[] = [];
  for (let i = 0; i < sockets; i += 50) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(50, sockets - i) }, () => subscribed(live, job.id, job.token)))));
  }
  const sentAt: number[] = [];
  const reached = new Array<number>(updates).fill(0);
  const lastArrival = new Array<number>(updates).fill(0);
  for (const client of clients) {
    onEvents(client, job.id, (event, at) => {
      if (event.type !== 'job:progress' || event.text === undefined) return;
      const i = Number(event.text);
      reached[i]++;
      lastArrival[i] = Math.max(lastArrival[i], at);
    });
  }
  for (let i = 0; i < updates; i++) {
    sentAt[i] = performance.now();
    job.job.update({ text: String(i) });
    await waitFor(() => reached[i] === sockets, `update ${i} to reach every socket`, 60_000);
  }
  job.finish();
  await Promise.all(clients.map((c) => c.close()));
  const spans = lastArrival.map((at, i) => at - sentAt[i]).sort((a, b) => a - b);
  return [
    { name: `update → all ${sockets} watchers p50`, value: round(percentile(spans, 50)), unit: 'ms' },
    { name: `update → all ${sockets} watchers p99`, value: round(percentile(spans, 99)), unit: 'ms' },
  ];
}

/** Runs the live benchmarks and returns their figures. */
export async function benchLive(): Promise<LiveFigure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'backjob-bench-live-'));
  const live = await LiveServer.start({
    backjob: { backend: sqlite({ file: join(dir, 'bench.db') }), maxLogLines: 1_000_000, concurrency: 10 },
  });
  try {
    return [...(await updateLatency(live, 5)), ...(await logThroughput(live, 100_000)), ...(await fanOut(live, 1000, 100))];
  } finally {
    await live.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const { name, value, unit } of await benchLive()) console.log(`${name.padEnd(52)} ${String(value).padStart(10)} ${unit}`);
}
