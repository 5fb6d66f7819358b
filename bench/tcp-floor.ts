/**
 * The floor under any fan-out on this machine: one 100-byte `write` to each
 * of many loopback TCP sockets from one process, with no WebSocket, JSON or
 * store at all; the readers sit in a child process (this file, run with
 * `readers`), as the fan-out's watchers do. Whatever a stack adds, one update
 * to that many sockets cannot reach them all sooner than this loop does.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { sleep, stopChild } from './kit.js';

const PAYLOAD = 100;

export interface TcpFloor {
  /** Median over the rounds, ms: the write loop, and until the child had read every byte. */
  writeLoop: number;
  allRead: number;
  /** Median CPU of the writing process per round, ms, and the kernel's part of it. */
  cpu: number;
  kernel: number;
}

/** `rounds` rounds of one write to each of `sockets` sockets, 200 ms apart. */
export async function tcpFloor(sockets: number, rounds = 5): Promise<TcpFloor> {
  const server = createServer();
  const accepted: Socket[] = [];
  server.on('connection', (socket) => {
    socket.setNoDelay(true); // as ws sets it
    accepted.push(socket);
  });
  server.listen({ port: 0, host: '127.0.0.1', backlog: sockets });
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'readers', String(port), String(sockets)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  // A reader that fails exits: every wait below gives up then, instead of hanging the bench.
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the tcp floor's readers exited with ${code}`);
  });
  exited.catch(() => {});
  try {
    while (accepted.length < sockets) await Promise.race([sleep(20), exited]);
    const payload = Buffer.alloc(PAYLOAD, 'x');
    const runs: TcpFloor[] = [];
    for (let round = 1; round <= rounds; round++) {
      child.send(round * sockets * PAYLOAD);
      const read = once(child, 'message');
      const cpu = process.cpuUsage();
      const began = performance.now();
      for (const socket of accepted) socket.write(payload);
      const wrote = performance.now();
      const used = process.cpuUsage(cpu);
      await Promise.race([read, exited]);
      runs.push({ writeLoop: wrote - began, allRead: performance.now() - began, cpu: (used.user + used.system) / 1000, kernel: used.system / 1000 });
      await sleep(200);
    }
    const median = (pick: (run: TcpFloor) => number) => runs.map(pick).sort((a, b) => a - b)[Math.floor(runs.length / 2)]!;
    return { writeLoop: median((r) => r.writeLoop), allRead: median((r) => r.allRead), cpu: median((r) => r.cpu), kernel: median((r) => r.kernel) };
  } finally {
    await stopChild(child);
    for (const socket of accepted) socket.destroy();
    server.close();
  }
}

/** The child: `sockets` readers that say when they have read `total` bytes between them. */
function readers(port: number, sockets: number): void {
  let read = 0;
  let total = Infinity;
  const check = () => {
    if (read >= total) {
      total = Infinity;
      process.send!('read');
    }
  };
  for (let i = 0; i < sockets; i++) {
    connect(port, '127.0.0.1')
      .on('data', (chunk) => {
        read += chunk.length;
        check();
      })
      .on('error', (error) => {
        console.error(`tcp floor reader: ${error.message}`);
        process.exit(1);
      });
  }
  process.on('message', (bytes) => {
    total = Number(bytes);
    check();
  });
  process.on('SIGTERM', () => process.exit(0));
}

if (process.argv[2] === 'readers') readers(Number(process.argv[3]), Number(process.argv[4]));
