/**
 * The demo app: an ordinary Express app with BackJob embedded the way a user
 * embeds it in their own server — `createBackJob`, `app.use(backjob.router())`,
 * `backjob.attach(server)` — plus Vite, in middleware mode, serving the
 * elements' TypeScript to the pages.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import { createServer as createViteServer } from 'vite';
import { createBackJob, sqlite } from '../server/index.js';
import type { BackJob } from '../server/types.js';
import { defineDemoJobs, demoJobRoutes, type DemoTiming } from './jobs.js';
import * as pages from './pages.js';
import { createSessions } from './session.js';

/** Options of {@link createDemo}. */
export interface DemoOptions extends DemoTiming {
  /** SQLite file; default: BackJob's default (`backjob.db` in the working directory). */
  dbFile?: string;
}

/** A running demo, not yet listening. */
export interface Demo {
  server: Server;
  backjob: BackJob;
  /** Stops jobs, closes sockets, Vite and the store. */
  close(): Promise<void>;
}

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * What the pages may load through Vite: the client's sources and the
 * packages they import. Nothing else — Vite would happily serve any file
 * under the project, the SQLite file (and its secret) included.
 */
const CLIENT_PATHS = /^\/(?:client\/|shared\/|node_modules\/|@id\/|@vite\/|@fs\/.+\/node_modules\/)/;

/** Whether a request path is a client asset: within {@link CLIENT_PATHS}, with no way to climb out of it. */
function isClientAsset(rawPath: string): boolean {
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    return false;
  }
  // `..` (raw or percent-encoded) would climb out of the allowed folders; a `%` left after
  // decoding could be decoded again further down.
  if (path.split('/').includes('..') || /[\\%]/.test(path)) return false;
  return CLIENT_PATHS.test(path);
}

/** Builds the demo app and its HTTP server. */
export async function createDemo(options: DemoOptions): Promise<Demo> {
  const sessions = createSessions(() => backjob.host.key());
  const backjob = createBackJob({
    ...(options.dbFile ? { backend: sqlite({ file: options.dbFile }) } : {}),
    identify: (req) => sessions.user(req),
    routes: ['/jobs/*'],
  });
  defineDemoJobs(backjob, options);
  await backjob.ready;

  const vite = await createViteServer({
    root,
    configFile: false,
    logLevel: 'warn',
    appType: 'custom',
    server: {
      middlewareMode: true,
      hmr: false,
      // No Vite WebSocket server either: it would take port 24678 whatever `hmr` says, so a second demo clashed.
      ws: false,
      // A second fence behind isClientAsset: only these folders, never a database.
      fs: {
        allow: ['client', 'shared', 'node_modules'].map((dir) => join(root, dir)),
        deny: ['.env', '.env.*', '*.{crt,pem}', '**/.git/**', '*.{db,sqlite,sqlite3}', '*.db-*'],
      },
    },
    // Serve lit & co. as the ES modules they are: no pre-bundling step that
    // could reload a page mid-job when it discovers a new import.
    optimizeDeps: { noDiscovery: true, include: [] },
  });

  const app = express();
  app.disable('x-powered-by');
  // BackJob first: its HTTP API, and the middleware that gives dispatched requests `req.backjob`.
  app.use(backjob.router());
  app.use(express.urlencoded({ extended: false, limit: '64kb' }));
  app.use(demoJobRoutes(sessions, options));

  const ctx = (req: Request) => ({ user: sessions.user(req), path: req.path });
  const page = (res: Response, markup: string, status = 200) => res.status(status).type('html').send(markup);

  app.get('/', (req, res) => page(res, pages.launchPage(ctx(req))));
  app.get('/as-you', (req, res) => page(res, pages.asYouPage(ctx(req))));
  app.post('/as-you/anonymous', async (_req, res) => {
    // The same route as the launcher's, but on nobody's behalf: no cookies go along.
    const { id, token } = await backjob.start({ route: '/jobs/team-report' }, { as: 'anonymous' });
    res.redirect(303, `/watch/${id}?token=${encodeURIComponent(token)}`);
  });
  app.get('/failures', (req, res) => page(res, pages.failuresPage(ctx(req))));
  app.get('/import', (req, res) => page(res, pages.importPage(ctx(req))));
  app.get('/rendered', async (req, res) => {
    const job = await backjob.start({ name: 'digest/daily' }, { as: req });
    page(res, pages.renderedPage(ctx(req), job));
  });
  app.get('/steps', (req, res) => page(res, pages.stepsPage(ctx(req))));
  app.get('/children', (req, res) => page(res, pages.childrenPage(ctx(req))));
  app.get('/batch', (req, res) => page(res, pages.batchPage(ctx(req))));
  app.get('/jobs', (req, res) => page(res, pages.jobsPage(ctx(req))));
  app.get('/watch/:id', async (req, res) => {
    const token = typeof req.query.token === 'string' ? req.query.token : undefined;
    const job = await backjob.authorize(req.params.id, { principal: sessions.user(req), token });
    if (!job) return page(res, pages.notFoundPage(ctx(req)), 404);
    page(res, pages.watchPage(ctx(req), job, backjob.tokenFor(job.id)));
  });
  app.get('/login', (req, res) => page(res, pages.loginPage(ctx(req))));
  app.post('/login', (req, res) => {
    const { user = '', password = '' } = req.body as Record<string, string>;
    if (sessions.login(res, String(user).trim(), String(password))) return res.redirect(303, '/');
    page(res, pages.loginPage(ctx(req), 'Unknown user or wrong password.'), 401);
  });
  app.post('/logout', (_req, res) => {
    sessions.logout(res);
    res.redirect(303, '/');
  });

  app.use(express.static(fileURLToPath(new URL('public', import.meta.url)), { index: false }));
  app.use((req, res, next) => (isClientAsset(req.path) ? vite.middlewares(req, res, next) : next()));
  app.use((req, res) => page(res, pages.notFoundPage(ctx(req)), 404));
  app.use((error: Error & { status?: number }, req: Request, res: Response, _next: NextFunction) => {
    const status = error.status ?? 500;
    if (status >= 500) console.error(error);
    res.status(status).type('text/plain').send(status >= 500 ? 'Internal error' : error.message);
  });

  const server = createHttpServer(app);
  backjob.attach(server);

  return {
    server,
    backjob,
    async close() {
      await backjob.close();
      await vite.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
