import { after, before } from 'node:test';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisJobStore } from './store.js';
import { startTestRedis, type TestRedis } from '../../testing/redis-server.js';
import { runStoreContract } from '../../testing/store-contract.js';

let server: TestRedis;
before(async () => {
  server = await startTestRedis();
});
after(async () => {
  await server?.stop();
});

runStoreContract('redis', async () => {
  const connection = new Redis(server.url, { maxRetriesPerRequest: null });
  // A fresh prefix per test is an empty store without flushing anything.
  const store = new RedisJobStore(connection, `test-${randomUUID()}`);
  return {
    store,
    async cleanup() {
      await store.close();
      await connection.quit();
    },
  };
});
