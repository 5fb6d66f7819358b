/**
 * The Express adapter (Express 4 and 5): what `backjob.router()` mounts into
 * the app. The dispatched-request middleware runs for every path, so any
 * route of the app can be a job; the HTTP API answers below `basePath`;
 * everything else passes through to the app's own routes untouched, its
 * errors to the app's own error handlers.
 *
 * `identify` receives the Express request, which went through the app's
 * middleware mounted before the router (express-session, passport).
 */
import { createRequire } from 'node:module';
import type { Router } from 'express';
import type { BackJob } from '../types.js';
import { httpApiOf } from './wiring.js';

/**
 * The app's own Express, loaded when an app asks for a router and not before:
 * apps on Fastify or node:http need no Express installed.
 */
const loadExpress = (): typeof import('express') => createRequire(import.meta.url)('express');

/** One Express router for `app.use(backjob.router())`, mounted before the app's routes. */
export function createRouter(backjob: BackJob): Router {
  const api = httpApiOf(backjob);
  const router = loadExpress().Router();
  router.use((req, res, next) => {
    // Upgrades never pass through Express: the hub checks origins with the trust this app set.
    api.learnTrustProxy(req.app.get('trust proxy fn'));
    // req.url is below the router's mount point, as `basePath` is.
    api.handle(req, res, next, req);
  });
  return router;
}
