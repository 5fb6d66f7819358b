import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobSnapshot, ServerMessage } from '../../shared/protocol.js';
import { everyBackend } from '../testing/backends.js';
import { LIST_PUSH_MS } from './job-lists.js';
import { LiveServer, TestClient, asUser, waitFor } from '../testing/live-test-kit.js';

type Msg<T extends ServerMessage['type']> = Extract<ServerMessage, { type: T }>;
const isList = (ref: string) => (m: ServerMessage): m is Msg<'list'> => m.type === 'list' && m.ref === ref;

/** Every snapshot a client was pushed, in order. */
function changes(client: TestClient): JobSnapshot[] {
  return client.messages.flatMap((m) => (m.type === 'list:changed' ? m.jobs : []));
}

const { backends } = everyBackend('lists');

for (const [name, backend] of Object.entries(backends)) {
  describe(`live job lists on ${name}`, () => {
    let live: LiveServer;
    before(async () => {
      live = await LiveServer.start({ backjob: { backend: backend(), concurrency: 50 } });
    });
    after(() => live.close());

    test("a list shows the principal's own jobs, newest first, page by page, and never another user's", async () => {
      const mine = [];
      for (let i = 0; i < 5; i++) {
        mine.push(await live.manual('lister'));
        await live.manual('someone-else');
      }
      const client = await TestClient.open(live.url, { headers: { 'x-user': 'lister' } });
      client.send({ type: 'list', ref: 'p1', limit: 3 });
      const first = await client.next(isList('p1'), 'the first page');
      assert.deepEqual(first.jobs.map((j) => j.id), mine.slice(-3).reverse().map((j) => j.id));
      assert.ok(first.next, 'a next page');
      client.send({ type: 'list', ref: 'p2', limit: 3, before: first.next });
      const second = await client.next(isList('p2'), 'the second page');
      assert.deepEqual(second.jobs.map((j) => j.id), mine.slice(0, 2).reverse().map((j) => j.id));
      assert.equal(second.next, undefined, 'the last page');
      client.send({ type: 'list', ref: 'running', status: ['completed'] });
      assert.deepEqual((await client.next(isList('running'), 'filtered')).jobs, []);
      for (const job of mine) job.finish();
      await client.close();
    });

    test('the server pushes a new job, its progress (coalesced) and its end; nothing of anyone else', async () => {
      const alice = await TestClient.open(live.url, { headers: { 'x-user': 'alice' } });
      const bob = await TestClient.open(live.url, { headers: { 'x-user': 'bob' } });
      alice.send({ type: 'list', ref: 'a' });
      bob.send({ type: 'list', ref: 'b' });
      await alice.next(isList('a'), 'alice list');
      await bob.next(isList('b'), 'bob list');

      const job = await live.manual('alice');
      await waitFor(() => changes(alice).find((j) => j.id === job.id), 'the new job pushed');
      const pushesBefore = alice.messages.filter((m) => m.type === 'list:changed').length;
      const started = Date.now();
      for (let i = 1; i <= 100; i++) {
        job.job.update(i % 100);
        await sleep(2);
      }
      await job.job.flush();
      await sleep(LIST_PUSH_MS * 2);
      const pushes = alice.messages.filter((m) => m.type === 'list:changed').length - pushesBefore;
      const seconds = (Date.now() - started) / 1000;
      assert.ok(pushes <= Math.ceil((seconds * 1000) / LIST_PUSH_MS) + 1, `${pushes} pushes in ${seconds.toFixed(2)} s: coalesced`);
      assert.equal(changes(alice).filter((j) => j.id === job.id).at(-1)!.progress, 0, 'the latest progress arrives');
      job.finish();
      await waitFor(() => changes(alice).find((j) => j.id === job.id && j.status === 'completed'), 'the end pushed');
      assert.deepEqual(changes(bob), [], "bob hears nothing of alice's jobs");
      assert.ok(!bob.messages.some((m) => JSON.stringify(m).includes(job.id)));
      await Promise.all([alice.close(), bob.close()]);
    });

    test("a user's list has top-level jobs only: a batch is listed and pushed, its members never", async () => {
      live.backjob.define('ticks', async (job) => {
        for (let i = 1; i <= 5; i++) {
          job.update({ progress: i * 20 });
          await sleep(5);
        }
      });
      const client = await TestClient.open(live.url, { headers: { 'x-user': 'batcher' } });
      client.send({ type: 'list', ref: 'l' });
      await client.next(isList('l'), 'the list');
      const batch = await live.backjob.start(Array.from({ length: 20 }, () => ({ name: 'ticks' })), { as: asUser('batcher') });
      await waitFor(() => changes(client).find((j) => j.id === batch.id && j.status === 'completed'), 'the batch ended, pushed');
      await sleep(LIST_PUSH_MS * 2);
      assert.deepEqual([...new Set(changes(client).map((j) => j.id))], [batch.id], 'only the batch was pushed');
      const members = await live.backjob.list({ parent: batch.id });
      assert.equal(members.length, 20);
      assert.ok(members.every((member) => member.owner === 'batcher'));
      client.send({ type: 'list', ref: 'again' });
      assert.deepEqual((await client.next(isList('again'), 'the list again')).jobs.map((j) => j.id), [batch.id]);
      await client.close();
    });

    test('a change not yet pushed when the next page is asked for is still pushed (the rows already shown stay live)', async () => {
      const jobs = [];
      for (let i = 0; i < 3; i++) jobs.push(await live.manual('pager-live'));
      const client = await TestClient.open(live.url, { headers: { 'x-user': 'pager-live' } });
      client.send({ type: 'list', ref: 'p1', limit: 2 });
      const first = await client.next(isList('p1'), 'the first page');
      await sleep(LIST_PUSH_MS * 2); // the start events of the jobs are pushed and done with
      const shown = jobs.find((j) => j.id === first.jobs[0]!.id)!;
      shown.job.update(42);
      await shown.job.flush();
      client.send({ type: 'list', ref: 'p2', limit: 2, before: first.next }); // "show more", within the push interval
      await client.next(isList('p2'), 'the second page');
      await waitFor(() => changes(client).find((j) => j.id === shown.id && j.progress === 42), 'the change to a row of the first page');
      for (const job of jobs) job.finish();
      await client.close();
    });

    test('a socket that speaks for nobody has no list; a replaced or dropped list stops its pushes', async () => {
      const nobody = await TestClient.open(live.url);
      nobody.send({ type: 'list', ref: 'n' });
      const refusal = await nobody.next((m): m is Msg<'error'> => m.type === 'error' && m.ref === 'n', 'refusal');
      assert.equal(refusal.code, 'BACKJOB_ERR_UNAUTHORIZED');
      await nobody.close();

      const carol = await TestClient.open(live.url, { headers: { 'x-user': 'carol' } });
      carol.send({ type: 'list', ref: 'c' });
      await carol.next(isList('c'), 'carol list');
      carol.send({ type: 'unlist' });
      await sleep(50);
      const job = await live.manual('carol');
      await sleep(LIST_PUSH_MS * 3);
      assert.deepEqual(changes(carol), []);
      job.finish();
      await carol.close();
    });
  });
}
