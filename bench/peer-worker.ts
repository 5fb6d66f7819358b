/**
 * The peer's BullMQ worker as a process of its own (`startPeer(…, { workerProcess: true })`):
 * what an app on BullMQ runs beside its web process. argv: redis url, prefix, concurrency.
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { peerHandler } from './redis-peer.js';

const [url, prefix, concurrency] = process.argv.slice(2) as [string, string, string];
const connection = new Redis(url, { maxRetriesPerRequest: null });
const worker = new Worker('peer', peerHandler, { connection, prefix, concurrency: Number(concurrency) });
await worker.waitUntilReady();
process.send!({ type: 'ready' });
process.on('SIGTERM', async () => {
  await worker.close();
  await connection.quit();
  process.exit(0);
});
