/**
 * A JSON API whose users sign in for a bearer token (no cookies, no
 * session), with BackJob embedded, serving a React page built by Vite. The
 * page sends its token in `Authorization` on its own calls and, through
 * `configureBackjob({ headers })`, on BackJob's: the starts and the
 * connection tickets that open the live channel as the same user.
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import express from 'express';
import { createBackJob, type Backend, type BackJob } from 'backjob';
import { defineJobs } from '../jobs.js';
import { checkPassword } from '../users.js';

/** What the app needs from its environment. */
export interface ApiOptions {
  /** The built page (Vite's `dist`). */
  pageDir: string;
  /** Where jobs live (BackJob's default is SQLite in the working directory). */
  backend?: Backend;
}

/** The API and its HTTP server, not yet listening. */
export function createApi({ pageDir, backend }: ApiOptions): { server: http.Server; backjob: BackJob } {
  /** Signed-in users by token. A real API would keep them in its database, or sign them (JWT). */
  const users = new Map<string, string>();
  const userOf = (req: IncomingMessage) => {
    const token = /^Bearer ([\w-]{16,})$/.exec(req.headers.authorization ?? '')?.[1];
    return token === undefined ? undefined : users.get(token);
  };

  const backjob = createBackJob({ backend, identify: userOf });
  defineJobs(backjob);

  const app = express();
  app.use(backjob.router());
  app.post('/api/login', express.json(), (req, res) => {
    const { user, password } = (req.body ?? {}) as { user?: unknown; password?: unknown };
    if (!checkPassword(user, password)) return res.status(401).json({ error: 'Unknown user or wrong password' });
    const token = randomBytes(24).toString('base64url');
    users.set(token, user);
    res.json({ token });
  });
  app.use(express.static(pageDir));

  const server = http.createServer(app);
  backjob.attach(server);
  return { server, backjob };
}
