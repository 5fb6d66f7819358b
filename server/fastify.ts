/**
 * BackJob on Fastify 5: `app.register(backjobPlugin, { backjob })`. A
 * separate entry (`backjob/fastify`), so that `backjob` never loads Fastify's
 * types, and apps on other frameworks never see them.
 */
export { backjobPlugin, type BackjobPluginOptions } from './http/fastify.js';
