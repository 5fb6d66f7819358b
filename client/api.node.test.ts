/** `startJob` against a real BackJob behind `node:http` (Node 20's fetch stands in for the browser's). */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { backjobHandler, createBackJob, memory } from '../server/index.js';
import { startJob } from './api.js';
import { configureBackjob } from './config.js';

const backjob = createBackJob({ backend: memory(), key: 'client-api-test-key-0123456789ab' });
backjob.define('page', async () => undefined, { launchable: true });
const server = createServer(backjobHandler(backjob));
let basePath = '';

before(async () => {
  await backjob.ready;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  basePath = `http://127.0.0.1:${(server.address() as AddressInfo).port}/backjob`;
});
after(async () => {
  configureBackjob({});
  await backjob.close();
  server.closeAllConnections();
  server.close();
});

test('startJob calls in a loop that reuses one request object send what each call was given', async () => {
  // Headers from a function that takes a moment, as a token refresh does: the request must not be read after it.
  configureBackjob({ headers: async () => (await new Promise((resolve) => setTimeout(resolve, 10)), {}) });
  const request = { name: 'page', params: { page: 0 } };
  const replies = [];
  for (let page = 0; page < 3; page++) {
    request.params.page = page;
    replies.push(startJob(request, { basePath }));
  }
  const ids = (await Promise.all(replies)).map((reply) => reply.id);
  assert.equal(new Set(ids).size, 3, 'three jobs, not one merged');
  const params = await Promise.all(ids.map(async (id) => (await backjob.status(id))?.params));
  assert.deepEqual(params, [{ page: 0 }, { page: 1 }, { page: 2 }]);
});
