/**
 * BackJob on Redis, for apps that outgrow one process: `redis()`
 * is the backend web and worker processes share, `createWorker` the entry of
 * a worker process. A separate entry (`backjob/redis`), so that apps on the
 * embedded SQLite default never load ioredis (nor BullMQ, which only drains
 * what versions before leases left in Redis).
 */
export { redis, WORKER_LOST, type RedisBackendOptions } from './backends/redis/backend.js';
export { createWorker, type WorkerOptions } from './worker.js';
