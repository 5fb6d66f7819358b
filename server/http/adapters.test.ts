/** The HTTP API contract (server/testing/http-contract.ts) on every adapter: Express 5 and 4, Fastify 5, node:http. */
import { ADAPTERS } from '../testing/adapter-apps.js';
import { httpContract } from '../testing/http-contract.js';

for (const adapter of ADAPTERS) httpContract(adapter);
