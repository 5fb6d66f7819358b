/**
 * One app per adapter, each mounting BackJob the way the README shows, for
 * the HTTP API contract suite (http-contract.ts): Express 5, Express 4,
 * Fastify 5 and a plain `node:http` server. Each serves the same app route,
 * `GET /reports/echo`, which reports through the job a dispatched request
 * carries (the framework's `req.backjob` or its equivalent) and says whether
 * it had one; and `GET /app/hello`, an ordinary route of the app. Anything
 * else is the app's own 404, `the app does not know this`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import express from 'express';
import express4 from 'express4';
import Fastify from 'fastify';
import { backjobPlugin } from '../fastify.js';
import { backjobHandler, dispatchedJob } from '../http/node.js';
import type { BackJob, JobContext } from '../types.js';

/** An app with BackJob mounted, not yet listening: the suite listens on port 0 and closes it. */
export interface AdapterApp {
  server: Server;
  /** Extra shutdown of the framework (Fastify's `close`), before the server closes. */
  close?(): Promise<void>;
}

export interface Adapter {
  name: string;
  /** Builds the app around a ready shim; `backjob.attach` is the suite's, unless the adapter attaches itself (`attaches`). */
  mount(backjob: BackJob): Promise<AdapterApp>;
  /** Whether mounting attached the live channel already (the Fastify plugin does). */
  attaches?: boolean;
}

/** What `/reports/echo` answers and logs: whether the request carried its job, and what the job's request carried. */
function echo(job: JobContext | undefined, query: unknown, cookie: string | undefined): string {
  job?.log(`dispatched: ${job.id}`);
  return `job=${job ? 'yes' : 'no'}\nmonth=${(query as { month?: string }).month ?? ''}\ncookie=${cookie ?? 'none'}\n`;
}

const NOT_OURS = 'the app does not know this';

const express5: Adapter = {
  name: 'Express 5',
  async mount(backjob) {
    const app = express();
    app.use(backjob.router());
    app.get('/reports/echo', (req, res) => void res.type('text').send(echo(req.backjob, req.query, req.headers.cookie)));
    app.get('/app/hello', (_req, res) => void res.send('hello'));
    app.use((_req, res) => void res.status(404).type('text').send(NOT_OURS));
    return { server: createServer(app) };
  },
};

const expressFour: Adapter = {
  name: 'Express 4',
  async mount(backjob) {
    const app = express4();
    // Express 5's types are the ones named `express` here (see e2e/apps/express4): the cast is this repository's.
    app.use(backjob.router() as unknown as express4.RequestHandler);
    app.get('/reports/echo', (req, res) => void res.type('text').send(echo((req as unknown as express.Request).backjob, req.query, req.headers.cookie)));
    app.get('/app/hello', (_req, res) => void res.send('hello'));
    app.use((_req: express4.Request, res: express4.Response) => void res.status(404).type('text').send(NOT_OURS));
    return { server: createServer(app) };
  },
};

const fastify: Adapter = {
  name: 'Fastify 5',
  attaches: true,
  async mount(backjob) {
    const app = Fastify();
    await app.register(backjobPlugin, { backjob });
    app.get('/reports/echo', async (request, reply) => reply.type('text/plain').send(echo(request.backjob, request.query, request.headers.cookie)));
    app.get('/app/hello', async () => 'hello');
    app.setNotFoundHandler((_request, reply) => void reply.code(404).type('text/plain').send(NOT_OURS));
    await app.ready();
    return { server: app.server, close: () => app.close() };
  },
};

const node: Adapter = {
  name: 'node:http',
  async mount(backjob) {
    const app = (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://app.invalid');
      const text = (status: number, body: string) => res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
      if (req.method === 'GET' && url.pathname === '/reports/echo') return text(200, echo(dispatchedJob(req), Object.fromEntries(url.searchParams), req.headers.cookie));
      if (req.method === 'GET' && url.pathname === '/app/hello') return text(200, 'hello');
      text(404, NOT_OURS);
    };
    return { server: createServer(backjobHandler(backjob, app)) };
  },
};

export const ADAPTERS: readonly Adapter[] = [express5, expressFour, fastify, node];
