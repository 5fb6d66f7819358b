import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import type { Request, RequestHandler } from 'express';
import WebSocket from 'ws';
import { configureBackjob } from '../../client/config.js';
import { SharedConnection, type WebSocketConstructor } from '../../client/connection.js';
import type { WatchUpdate } from '../../client/types.js';
import { SUBPROTOCOL, TICKET_PROTOCOL_PREFIX, type TicketReply } from '../../shared/protocol.js';
import { startTestApp, waitFor, type TestApp } from '../testing/http-test-app.js';
import { TICKET_TTL_MS, issueTicket, readTicket } from './tickets.js';

/**
 * An app that signs users in by bearer token, in its own middleware (as
 * passport does): `identify` reads `req.user`, which only requests that went
 * through the app's stack have. A WebSocket upgrade never does.
 */
async function bearerApp(fault?: RequestHandler): Promise<TestApp> {
  const t = await startTestApp({
    identify: (req) => (req as Request & { user?: string }).user ?? null,
    before: (app) => {
      // A network between the page and the app that misbehaves, as the test wants it.
      if (fault) app.use(fault);
      app.use((req, _res, next) => {
        const token = /^Bearer (\w+)-token$/.exec(req.headers.authorization ?? '')?.[1];
        if (token) (req as Request & { user?: string }).user = token;
        next();
      });
    },
    appRoutes: (_app, backjob) => backjob.define('wait', (job) => new Promise((resolve) => job.signal.addEventListener('abort', resolve))),
  });
  t.backjob.attach(t.server);
  return t;
}

/**
 * Starts a job as `user`, then watches it from a page whose bearer token says `user`, with no watch
 * token: resolves once the owner got its snapshot, failing if it was refused.
 */
async function ownerWatches(t: TestApp, user: string, timeoutMs?: number): Promise<void> {
  const { id } = await t.backjob.start({ name: 'wait' }, { as: { headers: {}, user } as never });
  configureBackjob({ headers: { authorization: `Bearer ${user}-token` } });
  const connection = new SharedConnection(`${t.url.replace('http', 'ws')}/backjob/ws`, { WebSocket: WebSocket as unknown as WebSocketConstructor, minBackoff: 50, maxBackoff: 200 });
  try {
    const updates: WatchUpdate[] = [];
    connection.watch(id, undefined, (u) => updates.push(u));
    const answer = await waitFor(() => updates.find((u) => u.snapshot || u.error), 'an answer', timeoutMs);
    assert.equal(answer.error, undefined, 'the owner is not refused');
    assert.equal(answer.snapshot?.id, id);
  } finally {
    connection.close();
    configureBackjob({ headers: {} });
    await t.backjob.cancel(id);
  }
}

/** Opens a raw socket offering `protocols`; resolves with the handshake's status. */
async function handshake(t: TestApp, protocols: string[]): Promise<number> {
  const ws = new WebSocket(`${t.url.replace('http', 'ws')}/backjob/ws`, protocols);
  const [status] = await Promise.race([
    once(ws, 'unexpected-response').then(([, res]) => [(res as { statusCode: number }).statusCode]),
    once(ws, 'open').then(() => [101]),
  ]);
  ws.terminate();
  return status as number;
}

async function ticketOf(t: TestApp, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${t.url}/backjob/tickets`, { method: 'POST', headers });
  assert.equal(res.status, 200);
  const reply = (await res.json()) as TicketReply;
  assert.equal(reply.expiresIn, TICKET_TTL_MS);
  return reply.ticket;
}

describe('connection tickets', () => {
  let t: TestApp;
  before(async () => {
    t = await bearerApp();
  });
  after(async () => {
    configureBackjob({ headers: {} });
    await t.close();
  });

  test("the job's owner watches it without a token: the page's ticket carries what the app's own middleware saw", async () => {
    const { id } = await t.backjob.start({ name: 'wait' }, { as: { headers: {}, user: 'alice' } as never });
    const watch = (connection: SharedConnection) => {
      const updates: WatchUpdate[] = [];
      connection.watch(id, undefined, (u) => updates.push(u));
      return updates;
    };
    const url = `${t.url.replace('http', 'ws')}/backjob/ws`;
    configureBackjob({ headers: () => ({ authorization: 'Bearer alice-token' }) });
    const alice = new SharedConnection(url, { WebSocket: WebSocket as unknown as WebSocketConstructor });
    const seen = watch(alice);
    const snapshot = await waitFor(() => seen.find((u) => u.snapshot)?.snapshot, 'the owner to get the snapshot');
    assert.equal(snapshot.id, id);

    // Without the ticket the upgrade knows nobody: the same page is refused.
    const untickets = new SharedConnection(url, { WebSocket: WebSocket as unknown as WebSocketConstructor, tickets: false });
    const refused = watch(untickets);
    assert.equal((await waitFor(() => refused.find((u) => u.error), 'a refusal')).error!.code, 'BACKJOB_ERR_NOT_FOUND');

    // Another user's ticket sees nothing either.
    configureBackjob({ headers: { authorization: 'Bearer mallory-token' } });
    const mallory = new SharedConnection(url, { WebSocket: WebSocket as unknown as WebSocketConstructor });
    const denied = watch(mallory);
    assert.equal((await waitFor(() => denied.find((u) => u.error), 'a refusal')).error!.code, 'BACKJOB_ERR_NOT_FOUND');
    for (const c of [alice, untickets, mallory]) c.close();
    await t.backjob.cancel(id);
  });

  test('a user with a long id (400 characters) gets a ticket that opens the socket as that user, not as nobody', async () => {
    const long = 'u'.repeat(400);
    await ownerWatches(t, long);
    const ticket = await ticketOf(t, { authorization: `Bearer ${long}-token` });
    assert.equal(readTicket(t.backjob.host.key(), ticket)?.principal, long);
  });

  test('a ticket opens one socket: used, forged, from another key or expired, it is refused with 401', async () => {
    const ticket = await ticketOf(t, { authorization: 'Bearer alice-token' });
    assert.equal(await handshake(t, [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${ticket}`]), 101);
    assert.equal(await handshake(t, [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${ticket}`]), 401, 'used');
    const forged = `${ticket.slice(0, -4)}AAAA`;
    assert.equal(await handshake(t, [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${forged}`]), 401, 'forged');
    const otherKey = issueTicket(Buffer.from('another-key-0123456789abcdef'), 'alice');
    assert.equal(await handshake(t, [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${otherKey}`]), 401, 'another key');
    const expired = issueTicket(t.backjob.host.key(), 'alice', Date.now() - TICKET_TTL_MS - 1);
    assert.equal(await handshake(t, [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${expired}`]), 401, 'expired');
  });

  test('tickets are sealed: they name nobody to whoever sees them, and only their own purpose opens them', () => {
    const key = Buffer.from('a-key-of-enough-length-0123456');
    const ticket = issueTicket(key, 'alice@example.com');
    assert.ok(!Buffer.from(ticket.slice(3), 'base64url').toString('latin1').includes('alice'));
    assert.equal(readTicket(key, ticket)?.principal, 'alice@example.com');
    assert.equal(readTicket(key, 'v1.AAAA'), null);
    assert.equal(readTicket(key, 'x'.repeat(10_000)), null);
    assert.throws(() => issueTicket(key, 'x'.repeat(5_000)), /too long for a connection ticket/, 'no ticket the socket would refuse');
  });

  test('a ticket is refused to a page of another origin', async () => {
    const res = await fetch(`${t.url}/backjob/tickets`, { method: 'POST', headers: { origin: 'https://evil.example', authorization: 'Bearer alice-token' } });
    assert.equal(res.status, 403);
  });
});

test('a ticket endpoint that answers 503 for a moment (a proxy during a deploy) is asked again: the socket does not open as nobody', async () => {
  let unavailable = 1;
  const t = await bearerApp((req, res, next) => (req.path === '/backjob/tickets' && unavailable-- > 0 ? void res.status(503).end() : next()));
  try {
    await ownerWatches(t, 'alice');
  } finally {
    await t.close();
  }
});

test('a ticket request that never gets an answer (a dead keep-alive connection after sleep) is given up and asked again', { timeout: 60_000 }, async () => {
  let hang = 1;
  const t = await bearerApp((req, _res, next) => (req.path === '/backjob/tickets' && hang-- > 0 ? undefined : next())); // never answered
  try {
    await ownerWatches(t, 'alice', 40_000);
  } finally {
    t.server.closeAllConnections();
    await t.close();
  }
});

describe('tickets across allowed origins', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ allowedOrigins: ['https://admin.example'] });
  });
  after(() => t.close());

  test('an allowed origin may read its ticket with credentials (CORS, preflight included); any other origin gets no CORS and a 403', async () => {
    const preflight = await fetch(`${t.url}/backjob/tickets`, {
      method: 'OPTIONS',
      headers: { origin: 'https://admin.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://admin.example');
    assert.equal(preflight.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(preflight.headers.get('access-control-allow-headers'), 'authorization');
    const allowed = await fetch(`${t.url}/backjob/tickets`, { method: 'POST', headers: { origin: 'https://admin.example' } });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://admin.example');
    assert.match(allowed.headers.get('vary') ?? '', /Origin/);

    for (const method of ['OPTIONS', 'POST']) {
      const foreign = await fetch(`${t.url}/backjob/tickets`, { method, headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
      assert.equal(foreign.headers.get('access-control-allow-origin'), null, method);
      if (method === 'POST') assert.equal(foreign.status, 403);
    }
  });
});
