/**
 * The demo's session cookie against what a client may send: a value that is
 * not valid percent-encoding, prototype keys, a huge header, many pairs. None
 * of it may throw, neither in `user(req)` nor through the running demo, where
 * `identify` is asked on every API call and every WebSocket handshake.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { SUBPROTOCOL } from '../shared/protocol.js';
import { createSessions } from '../demo/session.js';
import { startDemoProcess, tempDir, type DemoProcess } from './harness.js';

/** Cookie headers a client could send to make the session code throw or mistake someone for a user. */
const HOSTILE_COOKIES: Record<string, string> = {
  'a value that is not percent-encoding': 'demo_session=%E0%A4%A',
  'a lone percent sign': 'demo_session=%',
  'a prototype key as the user': `demo_session=constructor.${Math.floor(Date.now() / 1000) + 3600}.${'A'.repeat(43)}`,
  'a __proto__ cookie': '__proto__=demo_session; demo_session=__proto__.1.x',
  'toString as the cookie name': 'toString=ada; hasOwnProperty=1',
  'too many dots': 'demo_session=ada.1.2.3.4',
  'no value': 'demo_session',
  'only separators': ';;;=;=;',
  // Under Node's 16 KiB header limit, so it reaches the app.
  'a huge value': `demo_session=${'%E0'.repeat(4_000)}`,
  'many pairs': Array.from({ length: 1_500 }, (_, i) => `c${i}=%`).join('; '),
};

describe('demo sessions: user(req) on hostile cookies', () => {
  const secret = Buffer.from('demo-session-test-secret-0123456789');
  const sessions = createSessions(() => secret);
  const request = (cookie: string) => ({ headers: { cookie } }) as IncomingMessage;

  for (const [what, cookie] of Object.entries(HOSTILE_COOKIES)) {
    test(`${what}: nobody, without throwing`, () => {
      assert.equal(sessions.user(request(cookie)), null);
    });
  }

  test('even correctly signed, a session for a key every object has is nobody', () => {
    // Signed the way the session code signs, which only someone holding the secret can: the
    // user-name check must stand on its own, not lean on the mac.
    const expiry = Math.floor(Date.now() / 1000) + 3600;
    for (const user of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const mac = createHmac('sha256', secret).update(`demo-session:${user}.${expiry}`).digest('base64url');
      assert.equal(sessions.user(request(`demo_session=${user}.${expiry}.${mac}`)), null, user);
    }
  });

  test('a real session still counts beside a malformed cookie, before or after it', () => {
    const headers: Record<string, string> = {};
    assert.equal(sessions.login({ setHeader: (name: string, value: string) => (headers[name] = value) } as never, 'ada', 'ada-demo'), true);
    const session = headers['Set-Cookie']!.split(';')[0]!;
    assert.equal(sessions.user(request(session)), 'ada');
    assert.equal(sessions.user(request(`broken=%E0%A4%A; ${session}`)), 'ada');
    assert.equal(sessions.user(request(`${session}; broken=%E0%A4%A`)), 'ada');
    assert.equal(sessions.user(request(`${session}.extra`)), null, 'the mac covers the whole value, not a prefix of it');
  });
});

describe('demo sessions: the running demo on hostile cookies', () => {
  const temp = tempDir();
  let demo: DemoProcess;
  before(async () => {
    demo = await startDemoProcess({ dbFile: temp.dbFile, stepMs: 60 });
  });
  after(async () => {
    await demo?.stop();
    temp.remove();
  });

  /** The status of a WebSocket handshake to the demo's hub: 101 when it opened. */
  function handshake(cookie: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${demo.url.replace('http', 'ws')}/backjob/ws`, SUBPROTOCOL, { headers: { cookie, origin: demo.url } });
      ws.once('open', () => {
        ws.close();
        resolve(101);
      });
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  for (const [what, cookie] of Object.entries(HOSTILE_COOKIES)) {
    test(`${what}: the API answers as to anybody, the page shows nobody signed in, the WebSocket opens`, async () => {
      const list = await fetch(`${demo.url}/backjob/jobs`, { headers: { cookie } });
      assert.equal(list.status, 401, await list.clone().text());
      assert.equal(((await list.json()) as { error: { code: string } }).error.code, 'BACKJOB_ERR_UNAUTHORIZED');
      const page = await fetch(`${demo.url}/`, { headers: { cookie } });
      assert.equal(page.status, 200);
      assert.match(await page.text(), /Not signed in/);
      assert.equal(await handshake(cookie), 101);
    });
  }

  test('a signed-in user stays signed in with a malformed cookie beside the session', async () => {
    const login = await fetch(`${demo.url}/login`, {
      method: 'POST',
      body: new URLSearchParams({ user: 'ada', password: 'ada-demo' }),
      redirect: 'manual',
    });
    assert.equal(login.status, 303);
    const session = login.headers.get('set-cookie')!.split(';')[0]!;
    const cookie = `broken=%E0%A4%A; ${session}`;
    const list = await fetch(`${demo.url}/backjob/jobs`, { headers: { cookie } });
    assert.equal(list.status, 200, await list.clone().text());
    assert.match(await (await fetch(`${demo.url}/`, { headers: { cookie } })).text(), /Signed in as <strong>Ada Lovelace<\/strong>/);
    assert.equal(await handshake(cookie), 101);
  });
});
