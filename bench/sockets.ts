/**
 * The socket child (see `openSockets` in bench/kit.ts): opens many client
 * sockets to a BackJob hub or a glue server, subscribes each, and times
 * items (log lines, progress texts) stamped `<index> <clock>` by the sender:
 * per item, the latest arrival across all sockets. A process of its own, so
 * 10,000 sockets fit the fd limit and the clients' parsing gets its own core.
 */
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { readServerMessage, SUBPROTOCOL } from '../shared/protocol.js';
import { clock, type RawReport, type SocketsSpec } from './kit.js';

const spec = await new Promise<SocketsSpec>((resolve) => process.once('message', (m) => resolve(m as SocketsSpec)));
const reached = new Uint32Array(spec.last + 1);
const latest = new Float64Array(spec.last + 1);
const stamps = new Float64Array(spec.last + 1);
let received = 0;
let firstArrival = 0;
let lastArrival = 0;
let asked = 0;
/** CPU time at 'ready': the report gives what the sockets cost from there on. */
let cpuAtReady: NodeJS.CpuUsage | undefined;

/**
 * Item `i` reached `socket`; a progress value also stands for every earlier one
 * merged into it (`merged`), while log lines never skip (and a resumed
 * subscription starts past the first ones).
 */
function item(text: string, at: number, socket: { high: number }, first: boolean, merged = true): void {
  const space = text.indexOf(' ');
  const i = Number(text.slice(0, space));
  const end = text.indexOf(' ', space + 1);
  stamps[i] = Number(text.slice(space + 1, end < 0 ? undefined : end));
  for (let j = merged ? socket.high + 1 : i; j <= i; j++) {
    reached[j]++;
    if (at > latest[j]!) latest[j] = at;
  }
  if (i > socket.high) socket.high = i;
  if (first) received++;
  firstArrival ||= at;
  if (at > lastArrival) lastArrival = at;
  if (i === spec.last && reached[i] === spec.sockets) finish();
}

function finish(): void {
  const arrivals = spec.countsOnly ? [] : Array.from(latest, (at, i) => (reached[i] === spec.sockets ? at : 0));
  const report: RawReport = { arrivals, stamps: spec.countsOnly ? [] : Array.from(stamps), received, firstArrival, lastArrival, asked, cpu: process.cpuUsage(cpuAtReady) };
  process.send!({ type: 'report', report });
}

async function open(first: boolean): Promise<WebSocket> {
  const ws = spec.protocol === 'backjob' ? new WebSocket(spec.url, SUBPROTOCOL) : new WebSocket(spec.url);
  const socket = { high: -1 };
  let subscribed!: () => void;
  const ready = new Promise<void>((resolve) => (subscribed = resolve));
  ws.on('message', (data) => {
    const at = clock();
    if (spec.protocol === 'glue') {
      const message = JSON.parse(data.toString());
      if (message.type === 'hello') return subscribed();
      return item(message.text, at, socket, first, message.type === 'progress');
    }
    // As the browser client reads a frame: events come whole, whichever protocol version packed them.
    const m = readServerMessage(data.toString());
    if (m.type === 'hello') asked ||= clock();
    if (m.type === 'hello') ws.send(JSON.stringify({ type: 'subscribe', job: spec.job, token: spec.token, ...(spec.after ? { after: spec.after } : {}) }));
    else if (m.type === 'snapshot') subscribed();
    else if (m.type === 'events') {
      for (const event of m.events) {
        if (event.type === 'job:log') item(event.line, at, socket, first, false);
        else if (event.type === 'job:progress' && event.text !== undefined) item(event.text, at, socket, first);
      }
    } else if (m.type === 'error') throw new Error(`${m.code}: ${m.message}`);
  });
  ws.on('error', (error) => {
    console.error(`socket error: ${error.message}`);
    process.exit(1);
  });
  await once(ws, 'open');
  await ready;
  return ws;
}

const sockets: WebSocket[] = [];
for (let i = 0; i < spec.sockets; i += 100) {
  sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, spec.sockets - i) }, (_, j) => open(i + j === 0)))));
}
cpuAtReady = process.cpuUsage();
process.send!({ type: 'ready' });
process.on('message', (m: { type?: string }) => {
  if (m.type === 'ping') process.send!({ type: 'pong', at: clock() });
});
process.on('SIGTERM', () => {
  for (const ws of sockets) ws.terminate();
  process.exit(0);
});
