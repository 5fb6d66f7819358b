/**
 * The hand-written glue BackJob's live path is measured against: a plain
 * `ws` server, as an app writes one to push a job's output to browsers. No
 * store, no replay, no auth, no backpressure: lines go from memory, one frame
 * each, and a broadcast serializes once and sends the same frame to every
 * socket. Frames are `{type, text}`; a socket gets `{"type":"hello"}` on open.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface Glue {
  url: string;
  /** Sockets connected. */
  sockets(): number;
  /** One frame per socket per call, the object serialized once. */
  broadcast(type: string, text: string): void;
  /** Sends `count` lines made by `line(i)` to every socket, one frame each, yielding to the loop every 1,000 as a producer would. */
  flood(count: number, line: (i: number) => string): Promise<void>;
  close(): Promise<void>;
}

export async function startGlue(): Promise<Glue> {
  const server = createServer();
  const wss = new WebSocketServer({ server });
  const clients = new Set<WebSocket>();
  wss.on('connection', (socket) => {
    clients.add(socket);
    socket.on('close', () => clients.delete(socket));
    socket.send('{"type":"hello"}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const broadcast = (type: string, text: string) => {
    const frame = JSON.stringify({ type, text });
    for (const socket of clients) socket.send(frame);
  };
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sockets: () => clients.size,
    broadcast,
    async flood(count, line) {
      for (let i = 0; i < count; i++) {
        broadcast('log', line(i));
        if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
      }
    },
    async close() {
      for (const socket of clients) socket.terminate();
      await new Promise((resolve) => wss.close(resolve));
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
