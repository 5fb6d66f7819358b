/**
 * The Fastify 5 adapter, as a plugin: `app.register(backjobPlugin, { backjob })`.
 *
 * - Dispatch recognition is an `onRequest` hook of the context the plugin is
 *   registered in (the plugin skips encapsulation, as plugins that decorate
 *   do): a dispatched request's route finds its job on `request.backjob`.
 * - The API's routes live in an encapsulated child context with its own body
 *   handling (the API reads its JSON itself: 16 KB, 415 for anything else)
 *   and error handler, so the app's parsers and handlers are left as they were.
 * - The live channel attaches to `app.server` (option `live`: the attach
 *   options, or `false` to attach it yourself) and closes with the app.
 *
 * `identify` receives the Fastify request: `(req) => req.session?.user` with
 * @fastify/session, or a bearer token from `req.headers.authorization`.
 * Fastify's `trustProxy` is not readable from the instance: give BackJob the
 * same as its own `trustProxy` option.
 *
 * Only types are imported from fastify: `backjob` itself never loads it.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import type { AttachOptions, BackJob, JobContext } from '../types.js';
import { NOT_FOUND, below } from './api.js';
import { encodeReply, errorReply, writeReply } from './reply.js';
import type { ApiReply } from './model.js';
import { httpApiOf } from './wiring.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The job this request runs, when BackJob dispatched it; absent otherwise. */
    backjob?: JobContext;
  }
}

export interface BackjobPluginOptions {
  backjob: BackJob;
  /** Options of the live channel attached to `app.server`, or `false` not to attach it. Default `{}`. */
  live?: AttachOptions | false;
}

function send(reply: FastifyReply, answer: ApiReply): FastifyReply {
  const { status, headers, body } = encodeReply(answer);
  return reply.code(status).headers(headers).send(body);
}

/** What Fastify itself refuses in the API's context (a bad URL, say) is the client's fault, answered the API's way. */
function fastifyError(error: { statusCode?: number; message?: string }): ApiReply {
  const status = Number(error.statusCode);
  if (!(status >= 400 && status < 500)) return errorReply(error);
  const code = status === 415 ? 'BACKJOB_ERR_UNSUPPORTED_MEDIA_TYPE' : status === 413 ? 'BACKJOB_ERR_TOO_LARGE' : 'BACKJOB_ERR_INVALID';
  return { status, json: { error: { code, message: error.message ?? 'Bad request' } } };
}

function routes(api: ReturnType<typeof httpApiOf>): FastifyPluginCallback {
  return (child: FastifyInstance, _options, done) => {
    // The body as it comes: the API reads and bounds it itself, after its origin and media type checks.
    child.removeAllContentTypeParsers();
    child.addContentTypeParser('*', (_request, payload, parsed) => parsed(null, payload));
    child.setErrorHandler((error, _request, reply) => send(reply, fastifyError(error as { statusCode?: number; message?: string })));
    const base = `${child.prefix}${api.basePath}`.replace(/\/+$/, '');
    const handler = async (request: FastifyRequest, reply: FastifyReply) => {
      const path = below(base, request.url);
      const found = path === null ? null : api.match(request.method, path);
      if (!found) return reply.callNotFound();
      if (found.kind === 'raw') {
        reply.hijack();
        const res = reply.raw;
        return found.route.handle(request.raw, res, (error) => writeReply(res, error === undefined ? NOT_FOUND : errorReply(error)));
      }
      const body = request.body instanceof Readable ? request.body : undefined;
      const answer = await api.serve(found, request.raw, request as unknown as IncomingMessage, body);
      return answer ? send(reply, answer) : reply.callNotFound();
    };
    child.all(base || '/', handler);
    child.all(`${base}/*`, handler);
    done();
  };
}

/** The BackJob plugin: `app.register(backjobPlugin, { backjob })`. */
export const backjobPlugin: FastifyPluginCallback<BackjobPluginOptions> = (fastify, { backjob, live = {} }, done) => {
  const api = httpApiOf(backjob);
  if (!fastify.hasRequestDecorator('backjob')) fastify.decorateRequest('backjob', undefined);
  fastify.addHook('onRequest', (request, reply, next) => {
    api.recognize(request.raw, reply.raw, (error) => {
      if (error !== undefined) return void send(reply, errorReply(error));
      const job = (request.raw as IncomingMessage & { backjob?: JobContext }).backjob;
      if (job) request.backjob = job;
      next();
    });
  });
  if (live !== false) {
    const hub = backjob.attach(fastify.server, live);
    fastify.addHook('onClose', (_instance, closed) => void hub.close().then(() => closed(), closed));
  }
  fastify.register(routes(api));
  done();
};

// What fastify-plugin sets: the hook and the decorator belong to the context the app registers the plugin in.
Object.assign(backjobPlugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'backjob' });
