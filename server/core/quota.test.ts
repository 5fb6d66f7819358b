/**
 * The quota of waiting jobs per owner, through the real HTTP API of a real
 * server, on each backend: 429 `BACKJOB_ERR_QUOTA` with `Retry-After`, no
 * overshoot under concurrent starts, merges never refused, anonymous starts
 * counted per client address (as Express sees it), app starts unlimited.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import { memory } from '../index.js';
import { everyBackend } from '../testing/backends.js';
import { startTestApp, type TestApp } from '../testing/http-test-app.js';
import type { BackJobOptions } from '../types.js';

const { backends: BACKENDS } = everyBackend('quota');

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { id?: string; merged?: boolean; error?: { code: string; message: string } };
}

/** `POST /backjob/jobs` over a real socket, from `localAddress` if given (any 127.x address is this machine). */
function postJob(
  url: string,
  payload: unknown,
  options: { cookie?: string; localAddress?: string; headers?: Record<string, string>; path?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify(payload);
    const req = request(
      `${url}${options.path ?? '/backjob/jobs'}`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(options.cookie ? { cookie: options.cookie } : {}), ...options.headers },
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text || '{}') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const work = (params: unknown) => ({ name: 'work', params });

for (const [kind, backend] of Object.entries(BACKENDS)) {
  describe(`quota of waiting jobs (${kind})`, () => {
    /** An app whose jobs all stay waiting (this process runs none), so every start counts. */
    async function waitingApp(options: Partial<BackJobOptions> & Parameters<typeof startTestApp>[0] = {}): Promise<TestApp> {
      return startTestApp({
        backend: backend(),
        worker: false,
        ...options,
        appRoutes: (app, backjob) => {
          backjob.define('work', () => 'done', { launchable: true });
          // Trusted app code starting a job for the signed-in user on its own account.
          app.post('/trusted', async (req, res) => {
            res.json(await backjob.start(work({ trusted: randomUUID() }), { as: req, quota: false }));
          });
        },
      });
    }

    it('answers a start over the quota with 429 BACKJOB_ERR_QUOTA and Retry-After, and never refuses a merge', async () => {
      const app = await waitingApp({ maxWaitingPerOwner: 3 });
      try {
        const alice = { cookie: 'user=alice' };
        const first = await postJob(app.url, work({ n: 1 }), alice);
        assert.equal(first.status, 202);
        for (const n of [2, 3]) assert.equal((await postJob(app.url, work({ n }), alice)).status, 202);

        const refused = await postJob(app.url, work({ n: 4 }), alice);
        assert.equal(refused.status, 429);
        assert.equal(refused.body.error?.code, 'BACKJOB_ERR_QUOTA');
        assert.match(refused.body.error!.message, /at most 3 may wait/);
        assert.equal(refused.headers['retry-after'], '5');
        assert.equal((await app.backjob.list({ owner: 'alice' })).length, 3, 'nothing was created');

        const merged = await postJob(app.url, work({ n: 1 }), alice);
        assert.equal(merged.status, 202, 'an identical start joins the waiting job');
        assert.equal(merged.body.merged, true);
        assert.equal(merged.body.id, first.body.id);

        assert.equal((await postJob(app.url, work({ n: 4 }), { cookie: 'user=bob' })).status, 202, 'bob has his own quota');
        const trusted = await postJob(app.url, {}, { ...alice, path: '/trusted' });
        assert.equal(trusted.status, 200, 'a start with quota: false is not limited');
        for (let i = 0; i < 25; i++) await app.backjob.start(work({ loop: i }));
        assert.equal((await app.backjob.list({ owner: null, status: 'waiting' })).length, 25, 'app starts without a request are not limited');
      } finally {
        await app.close();
      }
    });

    it('lets exactly the quota through when 200 starts race', async () => {
      const app = await waitingApp({ maxWaitingPerOwner: 20 });
      try {
        const replies = await Promise.all(Array.from({ length: 200 }, (_, n) => postJob(app.url, work({ n }), { cookie: 'user=carol' })));
        const statuses = replies.map((r) => r.status);
        assert.equal(statuses.filter((s) => s === 202).length, 20, String(statuses));
        assert.equal(statuses.filter((s) => s === 429).length, 180);
        assert.equal((await app.backjob.list({ owner: 'carol', status: 'waiting' })).length, 20);
      } finally {
        await app.close();
      }
    });

    it('counts anonymous starts per client address, the address Express sees', async () => {
      const app = await waitingApp({ maxWaitingPerOwner: 2 });
      try {
        for (const n of [1, 2]) assert.equal((await postJob(app.url, work({ n }), { localAddress: '127.0.0.1' })).status, 202);
        assert.equal((await postJob(app.url, work({ n: 3 }), { localAddress: '127.0.0.1' })).status, 429);
        const other = await postJob(app.url, work({ n: 3 }), { localAddress: '127.0.0.2' });
        assert.equal(other.status, 202, 'another address has its own quota');
        const { queueKey } = (await app.backjob.status(other.body.id!))!;
        assert.match(queueKey!, /^addr:[\w-]{22}$/);
        assert.equal(JSON.stringify(await app.backjob.status(other.body.id!)).includes('127.0.0.2'), false, 'the address itself is not stored');
        // Without `trust proxy`, a client cannot claim another address with a header.
        const spoofed = await postJob(app.url, work({ n: 4 }), { localAddress: '127.0.0.1', headers: { 'x-forwarded-for': '203.0.113.9' } });
        assert.equal(spoofed.status, 429);
      } finally {
        await app.close();
      }
    });

    it("counts per forwarded address when the app trusts its proxy (`trust proxy`)", async () => {
      const app = await waitingApp({ maxWaitingPerOwner: 1, before: (express) => express.set('trust proxy', 'loopback') });
      try {
        const from = (address: string) => ({ headers: { 'x-forwarded-for': address } });
        assert.equal((await postJob(app.url, work({ n: 1 }), from('203.0.113.1'))).status, 202);
        assert.equal((await postJob(app.url, work({ n: 2 }), from('203.0.113.1'))).status, 429);
        assert.equal((await postJob(app.url, work({ n: 2 }), from('203.0.113.2'))).status, 202);
        // IPv6 counts per /64: the addresses of one network share it.
        assert.equal((await postJob(app.url, work({ n: 3 }), from('2001:db8:0:1::a'))).status, 202);
        assert.equal((await postJob(app.url, work({ n: 4 }), from('2001:db8:0:1::b'))).status, 429);
        assert.equal((await postJob(app.url, work({ n: 4 }), from('2001:db8:0:2::b'))).status, 202);
      } finally {
        await app.close();
      }
    });
  });
}

describe('maxWaitingPerOwner', () => {
  it('is validated like every option', async () => {
    const { createBackJob } = await import('../index.js');
    for (const value of [-1, 1.5, '20', Number.NaN, null]) {
      assert.throws(() => createBackJob({ backend: memory(), maxWaitingPerOwner: value as number }), (error: Error) => {
        assert.match(error.message, /^Expected `maxWaitingPerOwner` to be a non-negative integer \(0 for no limit\), got `.*` \(\w+\)$/);
        return true;
      });
    }
    const backjob = createBackJob({ backend: memory() });
    assert.equal(backjob.host.options.maxWaitingPerOwner, 20);
    await backjob.close();
  });
});
