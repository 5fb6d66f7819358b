/**
 * An Express 5 app as its authors already had it — express-session for
 * sign-in, helmet with its default Content-Security-Policy — with BackJob
 * added the way the README says: `identify` reads the session, the router
 * goes after the session middleware, the client bundle is served from the
 * app's own origin (helmet allows scripts from 'self' only).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import express from 'express';
import session from 'express-session';
import helmet, { type HelmetOptions } from 'helmet';
import { createBackJob, type Backend, type BackJob } from 'backjob';
import { defineJobs } from '../jobs.js';
import { jobPage, launchersPage, signInPage } from '../pages.js';
import { checkPassword } from '../users.js';

declare module 'express-session' {
  interface SessionData {
    user: string;
  }
}

/** What the app needs from its environment. */
export interface AppOptions {
  /** Where jobs live (BackJob's default is SQLite in the working directory). */
  backend?: Backend;
  /** helmet's `contentSecurityPolicy` option. Default: helmet's default policy. */
  contentSecurityPolicy?: HelmetOptions['contentSecurityPolicy'];
}

/** The app and its HTTP server, not yet listening. */
export function createApp({ backend, contentSecurityPolicy }: AppOptions = {}): { server: http.Server; backjob: BackJob } {
  const backjob = createBackJob({
    backend,
    // The session is there because the router runs after express-session; an upgrade without a ticket has none.
    identify: (req) => req.session?.user,
  });
  defineJobs(backjob);

  const app = express();
  app.use(helmet({ contentSecurityPolicy }));
  app.use(session({ secret: randomBytes(32).toString('hex'), resave: false, saveUninitialized: false, cookie: { httpOnly: true, sameSite: 'lax' } }));
  app.use(backjob.router());
  app.use(express.urlencoded({ extended: false }));

  app.get('/', (req, res) => {
    const user = req.session.user;
    res.send(user ? launchersPage(user) : signInPage());
  });

  app.post('/login', (req, res, next) => {
    const { user, password } = req.body as { user?: string; password?: string };
    if (!checkPassword(user, password)) return res.status(401).send(signInPage('Unknown user or wrong password'));
    // A new session id on sign-in, against session fixation.
    req.session.regenerate((error) => {
      if (error) return next(error);
      req.session.user = user;
      res.redirect(303, '/');
    });
  });

  app.get('/jobs/:id', (req, res) => {
    res.send(jobPage(req.params.id));
  });

  const server = http.createServer(app);
  backjob.attach(server);
  return { server, backjob };
}
