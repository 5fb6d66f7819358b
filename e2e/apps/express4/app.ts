/**
 * An Express 4 app with express-session, BackJob added the way the README
 * says: `identify` reads the session, `backjob.router()` (BackJob's own
 * router) mounted after the session middleware, the client bundle served
 * from the app's origin. Express 4 is the `express4` alias here; in an app
 * of its own it is simply `express`.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import express, { type RequestHandler } from 'express4';
import session from 'express-session';
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
}

/** The app and its HTTP server, not yet listening. */
export function createApp({ backend }: AppOptions = {}): { server: http.Server; backjob: BackJob } {
  const backjob = createBackJob({
    backend,
    // The session is there because the router runs after express-session; an upgrade without a ticket has none.
    identify: (req) => req.session?.user,
  });
  defineJobs(backjob);

  const app = express();
  // The casts are this repository's, not an app's: here the types of Express 5 are the ones named
  // `express`, which express-session's and BackJob's types refer to. An Express 4 app has only 4's.
  app.use(session({ secret: randomBytes(32).toString('hex'), resave: false, saveUninitialized: false, cookie: { httpOnly: true, sameSite: 'lax' } }) as unknown as RequestHandler);
  app.use(backjob.router() as unknown as RequestHandler);
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
