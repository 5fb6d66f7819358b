import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { peekBody } from './peek-body.js';
import { waitFor } from '../testing/helpers.js';

/** Reads the rest of a stream as a body parser would: data events until the end. */
async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(Buffer.from(chunk as Buffer | string));
  return Buffer.concat(chunks);
}

describe('peekBody', () => {
  let server: Server;
  let port: number;
  /** What each request's handler saw: the peeked bytes, then what a reader after it got. */
  const seen: Array<{ url: string; peeked: string | null; after: string }> = [];
  /** URLs whose handler has begun to peek. */
  const started = new Set<string>();

  before(async () => {
    server = createServer(async (req, res) => {
      const length = Number(req.headers['content-length'] ?? 0);
      if (req.url === '/flowing') req.resume();
      if (req.url === '/decoded') req.setEncoding('utf8');
      // As behind an app's async middleware (a session lookup): the whole request has arrived and ended.
      if (req.url === '/late') await sleep(30);
      started.add(req.url!);
      const peeked = await peekBody(req, length);
      // Resolves once the client went away, too: then there is nothing more to read.
      const rest = req.destroyed ? Buffer.alloc(0) : await readAll(req).catch(() => Buffer.alloc(0));
      seen.push({ url: req.url!, peeked: peeked && peeked.toString('latin1'), after: rest.toString('latin1') });
      res.end(JSON.stringify({ peeked: peeked?.toString('base64') ?? null, after: rest.toString('base64') }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const open = (): Socket => connect(port, '127.0.0.1');
  const head = (url: string, length: number) => `POST ${url} HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\n\r\n`;
  /** Bodies of every response read from a raw socket, in order. */
  const answers = (socket: Socket) => {
    let text = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (text += chunk));
    return () => [...text.matchAll(/\r\n\r\n(\{[^}]*\})/g)].map((m) => JSON.parse(m[1]!) as { peeked: string | null; after: string });
  };

  test('a body in the same packet as the headers: peeked whole, and a reader after still gets every byte, then the end', async () => {
    const body = Buffer.concat([Buffer.from('ü😀 '), Buffer.from(Array.from({ length: 256 }, (_, i) => i))]);
    const socket = open();
    const got = answers(socket);
    socket.write(Buffer.concat([Buffer.from(head('/together', body.length)), body]));
    const [answer] = await waitFor(() => (got().length === 1 ? got() : null), 'the answer');
    assert.deepEqual(answer, { peeked: body.toString('base64'), after: body.toString('base64') });
    socket.destroy();
  });

  test('a body peeked only once the request has ended (after async middleware): a reader after still gets it all', async () => {
    const body = Buffer.from('late but whole: ü😀');
    const socket = open();
    const got = answers(socket);
    socket.write(Buffer.concat([Buffer.from(head('/late', body.length)), body]));
    const [answer] = await waitFor(() => (got().length === 1 ? got() : null), 'the answer');
    assert.deepEqual(answer, { peeked: body.toString('base64'), after: body.toString('base64') });
    socket.destroy();
  });

  test('a body that trickles in, in pieces: peeked whole, read whole', async () => {
    const body = Buffer.from('a body sent in many small pieces, one after the other: ü😀');
    const socket = open();
    const got = answers(socket);
    socket.write(head('/trickle', body.length));
    for (let i = 0; i < body.length; i += 7) {
      await sleep(5);
      socket.write(body.subarray(i, i + 7));
    }
    const [answer] = await waitFor(() => (got().length === 1 ? got() : null), 'the answer');
    assert.deepEqual(answer, { peeked: body.toString('base64'), after: body.toString('base64') });
    socket.destroy();
  });

  test('pipelined requests on one connection: each peek takes its own body and nothing of the next', async () => {
    const socket = open();
    const got = answers(socket);
    socket.write(`${head('/first', 5)}firstPOST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond${head('/third', 0)}`);
    const all = await waitFor(() => (got().length === 3 ? got() : null), 'three answers');
    const text = (b64: string | null) => (b64 === null ? null : Buffer.from(b64, 'base64').toString());
    assert.deepEqual(
      all.map((a) => [text(a.peeked), text(a.after)]),
      [
        ['first', 'first'],
        ['second', 'second'],
        ['', ''],
      ],
    );
    socket.destroy();
  });

  test('a client that goes away mid-body: null, and the server keeps serving', async () => {
    const socket = open();
    socket.write(`${head('/gone', 1000)}only part of it`);
    await waitFor(() => started.has('/gone'), 'the handler to begin');
    socket.resetAndDestroy();
    const entry = await waitFor(() => seen.find((s) => s.url === '/gone'), 'the handler to give up');
    assert.equal(entry.peeked, null);

    const next = open();
    const got = answers(next);
    next.write(`${head('/after', 2)}ok`);
    const [answer] = await waitFor(() => (got().length === 1 ? got() : null), 'the next answer');
    assert.equal(Buffer.from(answer!.peeked!, 'base64').toString(), 'ok');
    next.destroy();
  });

  test('a stream something else is already reading: null, and it is left alone', async () => {
    const socket = open();
    socket.write(`${head('/flowing', 3)}abc`);
    const entry = await waitFor(() => seen.find((s) => s.url === '/flowing'), 'the handler');
    assert.equal(entry.peeked, null);
    socket.destroy();
  });

  test('a stream set to decode text: null (its bytes are not to be had), and its reader still gets the text', async () => {
    const socket = open();
    socket.write(`${head('/decoded', 4)}abcd`);
    const entry = await waitFor(() => seen.find((s) => s.url === '/decoded'), 'the handler');
    assert.deepEqual(entry, { url: '/decoded', peeked: null, after: 'abcd' });
    socket.destroy();
  });
});
