/**
 * Fresh backends of every kind for a test file that runs the same tests on
 * each: memory, SQLite in a temp directory, and Redis on a real server this
 * starts before the file's tests and stops after them.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { tempDir } from './helpers.js';
import type { Backend } from '../types.js';
import { memory } from '../backends/local/memory.js';
import { redis } from '../backends/redis/backend.js';
import { startTestRedis, type TestRedis } from './redis-server.js';
import { sqlite } from '../backends/local/sqlite.js';

/**
 * Registers the file's `before`/`after` hooks. Each factory makes a new,
 * empty backend; `redisUrl` is the server's, for tests that share one prefix
 * between several processes.
 */
export function everyBackend(name: string): { backends: Record<'memory' | 'sqlite' | 'redis', () => Backend>; redisUrl(): string } {
  let server: TestRedis | undefined;
  const temp = tempDir(`backjob-${name}-`);
  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server?.stop();
    temp.remove();
  });
  return {
    backends: {
      memory: () => memory(),
      sqlite: () => sqlite({ file: join(temp.dir, `${name}-${randomUUID()}.db`) }),
      redis: () => redis({ url: server!.url, prefix: `${name}-${randomUUID()}` }),
    },
    redisUrl: () => server!.url,
  };
}
