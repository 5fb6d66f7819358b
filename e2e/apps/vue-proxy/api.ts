/**
 * The API of a Vue page that Vite's dev server serves: Express 5 with
 * express-session, BackJob embedded. In development the page's origin is
 * Vite's (`http://localhost:5173`), and its proxy, with `changeOrigin: true`,
 * hands the API the page's `Origin` beside the API's own `Host`: BackJob's
 * origin policy is told that one page origin, in development only (README,
 * "Behind a dev proxy").
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import express from 'express';
import session from 'express-session';
import { createBackJob, type Backend, type BackJob } from 'backjob';
import { defineJobs } from '../jobs.js';
import { checkPassword } from '../users.js';

declare module 'express-session' {
  interface SessionData {
    user: string;
  }
}

/** What the API needs from its environment. */
export interface ApiOptions {
  /**
   * Origin of the dev server whose pages use this API through its proxy, in
   * development only; say `http://localhost:5173`. Unset in production, where
   * page and API share one origin.
   */
  devOrigin?: string;
  /** Where jobs live (BackJob's default is SQLite in the working directory). */
  backend?: Backend;
}

/** The API and its HTTP server, not yet listening. */
export function createApi({ devOrigin, backend }: ApiOptions): { server: http.Server; backjob: BackJob } {
  const backjob = createBackJob({
    backend,
    identify: (req) => req.session?.user,
    allowedOrigins: devOrigin ? [devOrigin] : undefined,
  });
  defineJobs(backjob);

  const app = express();
  app.use(session({ secret: randomBytes(32).toString('hex'), resave: false, saveUninitialized: false, cookie: { httpOnly: true, sameSite: 'lax' } }));
  app.use(backjob.router());
  app.use(express.json());

  app.get('/api/me', (req, res) => {
    res.json({ user: req.session.user ?? null });
  });

  app.post('/api/login', (req, res, next) => {
    const { user, password } = (req.body ?? {}) as { user?: unknown; password?: unknown };
    if (!checkPassword(user, password)) return res.status(401).json({ error: 'Unknown user or wrong password' });
    req.session.regenerate((error) => {
      if (error) return next(error);
      req.session.user = user;
      res.json({ user });
    });
  });

  const server = http.createServer(app);
  backjob.attach(server);
  return { server, backjob };
}
