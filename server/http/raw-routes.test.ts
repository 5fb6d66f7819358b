/**
 * The extension point the composition root adds streams through (the live
 * channel's Server-Sent Events): a raw route below `basePath` writes its own
 * response, streamed as written, on every adapter; paths beside it stay the
 * API's or the app's, and a raw route that declines passes the request on.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createBackJob, memory } from '../index.js';
import { ADAPTERS } from '../testing/adapter-apps.js';
import { TEST_KEY } from '../testing/http-test-app.js';
import type { AdapterApp } from '../testing/adapter-apps.js';
import type { BackJobServer } from '../shim.js';
import { createHttpApi } from './api.js';
import { HTTP_API } from './wiring.js';

for (const adapter of ADAPTERS) {
  describe(`raw routes on ${adapter.name}`, () => {
    let backjob: BackJobServer;
    let app: AdapterApp;
    let url: string;
    let release!: () => void;

    before(async () => {
      backjob = createBackJob({ backend: memory(), key: TEST_KEY });
      await backjob.ready;
      // What the composition root does for the live channel's stream: the API over its host, with a raw route.
      const api = createHttpApi({
        host: backjob.host,
        rawRoutes: [
          {
            method: 'GET',
            path: '/events',
            handle(req, res, next) {
              if (req.url?.endsWith('/decline')) return next();
              res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
              res.write(`data: ${req.url}\n\n`);
              // The second event only after the client saw the first: the response streams.
              release = () => res.end('data: end\n\n');
            },
          },
        ],
      });
      // The same shim, seen through an object that carries this API instead of its own.
      app = await adapter.mount(Object.create(backjob, { [HTTP_API]: { value: api } }) as BackJobServer);
      app.server.listen(0, '127.0.0.1');
      await once(app.server, 'listening');
      url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    });
    after(async () => {
      await backjob.close();
      app.server.closeAllConnections();
      if (app.close) return app.close();
      app.server.close();
    });

    test('a raw route streams its own response, for its path and the paths below it', async () => {
      const res = await fetch(`${url}/backjob/events/job-1?after=3`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/event-stream');
      const reader = res.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      assert.match(first, /^data: \/backjob\/events\/job-1\?after=3\n\n/);
      release();
      let rest = '';
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value);
      assert.equal(rest, 'data: end\n\n');
    });

    test('a raw route that declines passes the request on; the API and the app are untouched', async () => {
      const declined = await fetch(`${url}/backjob/events/decline`);
      assert.equal(declined.status, 404);
      assert.equal((await fetch(`${url}/backjob/eventsx`)).status, 404);
      assert.equal((await fetch(`${url}/backjob/client.js`)).status, 200);
      assert.equal(await (await fetch(`${url}/app/hello`)).text(), 'hello');
    });
  });
}
